"""The plan guard on REAL engine output: what Pulumi v3.274 wrote for the stand-in stack.

tests/fixtures/engine/ holds `pulumi preview --json` documents and Automation API event logs of
tests/engine_project (Python dynamic providers standing in for Lightsail and Cloudflare, with the
real stack's protection shape). The stand-in types get the roles of the real ones through
`roles=`. What this does not prove: that the real providers' diffs replace what the stand-ins do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from operations import exitcodes, guard
from operations.guard import Role, Verdict
from tests.conftest import need

FIXTURES = Path(__file__).parent / "fixtures" / "engine"
STANDIN = "pulumi-python:dynamic/standin:"
STANDIN_ROLES = {
    f"{STANDIN}Instance": Role.INSTANCE,
    f"{STANDIN}InstancePublicPorts": Role.PORTS,
    f"{STANDIN}StaticIp": Role.STATIC_IP,
    f"{STANDIN}StaticIpAttachment": Role.ATTACHMENT,
    f"{STANDIN}DnsRecord": Role.DNS_RECORD,
    f"{STANDIN}Command": Role.PROVISIONING,
}
EXPECTED = {
    "protected-replace": Verdict.REBUILD,
    "unprotected-replace": Verdict.REBUILD,
    "static-ip-replace": Verdict.FORBIDDEN,
    "no-changes": Verdict.SAFE,
}
FORMS = ["preview.json", "events.jsonl"]


def fixture(scenario: str, form: str) -> Path:
    path = FIXTURES / f"{scenario}.{form}"
    need(
        path.is_file(),
        f"the engine fixture {path.relative_to(FIXTURES.parent.parent)}",
        "generate the engine fixtures (tests/fixtures/engine, written by the engine tests' "
        "generator against the Pulumi CLI in .engine/bin)",
    )
    return path


def judged(scenario: str, form: str) -> guard.Report:
    return guard.judge_plan(
        guard.read_plan(fixture(scenario, form).read_text(encoding="utf-8")), STANDIN_ROLES
    )


def urn_of(kind: str, steps) -> str:
    return next(s.urn for s in steps if s.type_token == f"{STANDIN}{kind}")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_real_engine_output_gets_the_expected_verdict(scenario, form):
    report = judged(scenario, form)
    assert report.verdict is EXPECTED[scenario], guard.render(report)


@pytest.mark.parametrize("form", FORMS)
def test_protected_replace_is_a_rebuild_because_of_the_instance(form):
    report = judged("protected-replace", form)
    instance = urn_of("Instance", (j.step for j in report.judgements))
    # The engine's protection error is there, and it is what names the instance.
    assert any("marked for protection" in e for e in report.errors), report.errors
    protection = [j for j in report.judgements if j.step.op == guard.ERROR_OP and j.verdict]
    assert [(j.step.urn, j.verdict) for j in protection] == [(instance, Verdict.REBUILD)]
    assert {j.step.urn for j in report.offending} == {instance}
    # The ports, attachment and provisioning are replaced with it, and that alone is safe.
    replaced = {j.role for j in report.judgements if j.step.op == "replace"}
    assert {Role.PORTS, Role.ATTACHMENT, Role.PROVISIONING} <= replaced


@pytest.mark.parametrize("form", FORMS)
def test_unprotected_replace_has_no_error_and_replaces_the_instance(form):
    report = judged("unprotected-replace", form)
    assert report.errors == ()
    instance = urn_of("Instance", (j.step for j in report.judgements))
    assert {j.step.urn for j in report.offending} == {instance}
    assert report.counts.get("replace", 0) >= 4  # instance, ports, attachment, commands


def test_event_log_shows_the_delete_first_replacement_of_the_instance():
    report = judged("unprotected-replace", "events.jsonl")
    instance = urn_of("Instance", (j.step for j in report.judgements))
    ops = [j.step.op for j in report.judgements if j.step.urn == instance]
    assert ops == ["delete-replaced", "replace", "create-replacement"]


@pytest.mark.parametrize("form", FORMS)
def test_static_ip_replace_is_forbidden_and_named(form):
    report = judged("static-ip-replace", form)
    static_ip = urn_of("StaticIp", (j.step for j in report.judgements))
    forbidden = {j.step.urn for j in report.offending if j.verdict is Verdict.FORBIDDEN}
    assert forbidden == {static_ip}
    for fmt in ("text", "markdown"):
        assert static_ip in guard.render(report, fmt)


@pytest.mark.parametrize("form", FORMS)
def test_no_changes_is_safe_and_lists_nothing(form):
    report = judged("no-changes", form)
    assert report.offending == () and report.errors == ()
    assert set(report.counts) == {"same"}


def test_without_the_stand_in_roles_the_guard_fails_closed():
    """The stand-in types are unknown to the real table: any replace of them is forbidden."""
    plan = guard.read_plan(fixture("unprotected-replace", "preview.json").read_text())
    assert guard.judge_plan(plan).verdict is Verdict.FORBIDDEN


def test_automation_api_event_objects_match_the_log():
    """steps_from_engine_events on the SDK's own EngineEvent objects, as on_event delivers them."""
    from pulumi.automation import events as auto_events

    text = fixture("protected-replace", "events.jsonl").read_text()
    objects = [auto_events.EngineEvent.from_json(json.loads(line)) for line in text.splitlines()]
    steps, errors = guard.steps_from_engine_events(objects)
    assert (steps, errors) == guard.read_plan(text)[:2]
    assert guard.judge(steps, errors, STANDIN_ROLES).verdict is Verdict.REBUILD


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_pr_check_exit_code_on_real_output(scenario, capsys):
    """The CLI's exit code equals the verdict (it uses the real table, so only no-changes is 0)."""
    import runpy

    from tests.conftest import PROJECT_ROOT

    main = runpy.run_path(str(PROJECT_ROOT / "scripts" / "pr_check.py"))["main"]
    code = main([str(fixture(scenario, "preview.json"))])
    # With the production table the stand-ins are unknown types: replaces fail closed.
    expected = exitcodes.OK if scenario == "no-changes" else exitcodes.FORBIDDEN
    assert code == expected, capsys.readouterr().out


# ---------------------------------------------------------------- a delete that is no replacement

SAMPLES = Path(__file__).parent / "fixtures" / "guard"


def ports_removed(name: str) -> guard.Plan:
    """Real engine output (tests/fixtures/guard/make_engine_samples.py): the ports resource
    removed from the program while the instance is replaced delete-first."""
    return guard.read_plan((SAMPLES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "name",
    [
        "engine-ports-removed.events.jsonl",
        "engine-ports-removed.show-replacement-steps.preview.json",
    ],
)
def test_ports_removed_during_the_instances_replacement_is_forbidden(name):
    """The engine deletes the ports as `delete-replaced` (+ `remove-pending-replace`) with no
    replacement: a plain delete of the ports, not a "replace that follows the instance"."""
    plan = ports_removed(name)
    report = guard.judge_plan(plan, STANDIN_ROLES)
    ports = urn_of("InstancePublicPorts", plan.steps)
    assert report.verdict is Verdict.FORBIDDEN, guard.render(report)
    ops = [s.op for s in plan.steps if s.urn == ports]
    assert ops[0] == "delete-replaced" and not set(ops) & guard.REPLACING_OPS
    forbidden = {j.step.urn for j in report.offending if j.verdict is Verdict.FORBIDDEN}
    assert forbidden == {ports}
    assert "plain delete of the public ports" in guard.render(report)


def test_plain_preview_json_of_the_same_plan_hides_the_delete_and_says_so():
    """What `preview --json` leaves out the guard cannot see: the real digest has no step of
    the ports at all. The verdict is the instance's (the rebuild cycle then judges the event
    stream, which shows the delete), and the output says how to get the whole plan."""
    plan = ports_removed("engine-ports-removed.preview.json")
    assert not any(s.type_token == f"{STANDIN}InstancePublicPorts" for s in plan.steps)
    report = guard.judge_plan(plan, STANDIN_ROLES)
    assert report.verdict is Verdict.REBUILD
    assert "--show-replacement-steps" in guard.render(report)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_a_real_log_cut_short_or_canceled_is_unreadable(scenario):
    text = fixture(scenario, "events.jsonl").read_text(encoding="utf-8")
    lines = text.splitlines()
    summary = next(i for i, line in enumerate(lines) if '"summaryEvent"' in line)
    for keep in (summary, summary // 2, 1):
        with pytest.raises(guard.UnreadablePlan, match="the preview did not finish"):
            guard.read_plan("\n".join(lines[:keep]))
    canceled = json.loads(lines[summary])
    canceled["summaryEvent"]["result"] = "canceled"
    edited = [*lines[:summary], json.dumps(canceled), *lines[summary + 1 :]]
    with pytest.raises(guard.UnreadablePlan, match="canceled"):
        guard.read_plan("\n".join(edited))
    # Every real log is whole: prelude first, summary, consecutive sequence numbers.
    guard.steps_from_engine_events([json.loads(line) for line in lines], require_finished=True)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_a_real_digest_with_an_event_key_added_is_unreadable(scenario):
    digest = json.loads(fixture(scenario, "preview.json").read_text(encoding="utf-8"))
    digest["cancelEvent"] = {}
    with pytest.raises(guard.UnreadablePlan, match="engine event keys"):
        guard.read_plan(json.dumps(digest))
