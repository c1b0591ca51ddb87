"""The committed engine fixtures (tools/engine/make_fixtures.py) still parse and show their plan.

These are the engine's own bytes, saved from a real run; this test needs no CLI. The guard's
tests judge their verdicts; here we check each scenario still shows what it is named after.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "engine"
INSTANCE = "pulumi-python:dynamic/standin:Instance"
STATIC_IP = "pulumi-python:dynamic/standin:StaticIp"
DNS = "pulumi-python:dynamic/standin:DnsRecord"
PROTECTION = "marked for protection"

# scenario -> (type token -> the logical op `preview --json` shows), protection error expected
EXPECTED = {
    "protected-replace": ({INSTANCE: "replace"}, INSTANCE),
    "unprotected-replace": ({INSTANCE: "replace"}, None),
    "static-ip-replace": ({STATIC_IP: "replace", DNS: "update"}, STATIC_IP),
    "no-changes": ({}, None),
}


def type_of(urn: str) -> str:
    return urn.split("::")[2].rsplit("$", 1)[-1]


def preview(scenario: str) -> dict:
    return json.loads((FIXTURES / f"{scenario}.preview.json").read_text(encoding="utf-8"))


def events(scenario: str) -> list[dict]:
    lines = (FIXTURES / f"{scenario}.events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_preview_json_shows_the_scenario(scenario):
    ops, protected = EXPECTED[scenario]
    doc = preview(scenario)
    steps = {type_of(s["urn"]): s["op"] for s in doc["steps"]}
    for token, op in ops.items():
        assert steps.get(token) == op, f"{scenario}: {token} is {steps.get(token)}, not {op}"
    if not ops:
        assert set(steps.values()) <= {"same"}, steps
        assert set(doc["changeSummary"]) == {"same"}
    errors = [d["message"] for d in doc.get("diagnostics", []) if d.get("severity") == "error"]
    if protected:
        assert any(protected in e and PROTECTION in e for e in errors), errors
    else:
        assert not errors, errors


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_event_log_shows_the_scenario(scenario):
    ops, protected = EXPECTED[scenario]
    log = events(scenario)
    assert log[0].get("preludeEvent") is not None and log[-1].get("cancelEvent") is not None
    seen: dict[str, set[str]] = {}
    for event in log:
        meta = (event.get("resourcePreEvent") or {}).get("metadata")
        if meta:
            seen.setdefault(type_of(meta["urn"]), set()).add(meta["op"])
    for token, op in ops.items():
        assert op in seen.get(token, set()), f"{scenario}: {token} ops {seen.get(token)}"
    if scenario.endswith("-replace") and INSTANCE in ops:
        # The event log shows the physical steps of a delete-first replacement too.
        assert {"delete-replaced", "replace", "create-replacement"} <= seen[INSTANCE]
    if not ops:
        assert all(o == {"same"} for o in seen.values()), seen
    errors = [
        e["diagnosticEvent"]["message"]
        for e in log
        if (e.get("diagnosticEvent") or {}).get("severity") == "error"
    ]
    assert any(protected in e and PROTECTION in e for e in errors) if protected else not errors
    summary = next(e["summaryEvent"] for e in log if "summaryEvent" in e)
    assert summary["resourceChanges"] == preview(scenario)["changeSummary"]


def test_fixtures_hold_no_temporary_paths():
    for path in FIXTURES.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "/tmp/standin-" not in text, f"{path.name} still names the temporary folder"
