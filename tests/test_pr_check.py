"""scripts/pr_check.py as a pull-request check runs it: a real process, its output and exit code.

The plans are the hand-made files in tests/fixtures/guard/ (written in the engine's shapes, see
test_guard.py); the real engine's output is judged in test_guard_engine_fixtures.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from operations import exitcodes
from tests.conftest import PROJECT_ROOT
from tests.test_guard import INSTANCE_URN, STATIC_IP, urn

SCRIPT = PROJECT_ROOT / "scripts" / "pr_check.py"
PLANS = Path(__file__).parent / "fixtures" / "guard"


def pr_check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # The project root on the path is what the editable install (tools/setup.sh) provides; set
    # here too so the CLI's behaviour is tested even where that install has not run.
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        env=env,
    )


@pytest.mark.parametrize(
    "plan, code, named",
    [
        ("instance-replace.preview.json", exitcodes.NEEDS_REBUILD, INSTANCE_URN),
        ("instance-replace-delete-first.events.jsonl", exitcodes.NEEDS_REBUILD, INSTANCE_URN),
        ("protected-instance.preview.json", exitcodes.NEEDS_REBUILD, INSTANCE_URN),
        ("protected-instance.events.jsonl", exitcodes.NEEDS_REBUILD, INSTANCE_URN),
        (
            "static-ip-replace.preview.json",
            exitcodes.FORBIDDEN,
            urn(STATIC_IP, "raxx-tickets-ip"),
        ),
        (
            "dns-delete.events.jsonl",
            exitcodes.FORBIDDEN,
            urn("cloudflare:index/dnsRecord:DnsRecord", "tickets"),
        ),
        # The ports removed while the instance is replaced: a plain delete (real engine sequence).
        (
            "ports-removed-with-replace.events.jsonl",
            exitcodes.FORBIDDEN,
            urn("aws:lightsail/instancePublicPorts:InstancePublicPorts", "raxx-tickets-ports"),
        ),
        (
            "ports-removed-with-replace.show-replacement-steps.preview.json",
            exitcodes.FORBIDDEN,
            urn("aws:lightsail/instancePublicPorts:InstancePublicPorts", "raxx-tickets-ports"),
        ),
        # The protected instance replaced as part of replacing the static IP: the IP decides.
        (
            "protected-instance-for-static-ip.preview.json",
            exitcodes.FORBIDDEN,
            urn(STATIC_IP, "raxx-tickets-ip"),
        ),
        ("password-rotation.preview.json", exitcodes.OK, None),
        ("no-changes.events.jsonl", exitcodes.OK, None),
    ],
)
@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_verdict_is_the_exit_code_and_names_the_offender(plan, code, named, fmt):
    result = pr_check(str(PLANS / plan), "--format", fmt)
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stderr == ""
    headline = {0: "SAFE", 10: "REBUILD", 20: "FORBIDDEN"}[code]
    assert headline in result.stdout.splitlines()[0]
    if named:
        assert named in result.stdout, result.stdout
    else:
        assert "urn:pulumi" not in result.stdout  # a safe plan lists nothing


def test_text_is_the_default_format_and_markdown_is_a_table():
    text = pr_check(str(PLANS / "static-ip-replace.preview.json")).stdout
    markdown = pr_check(str(PLANS / "static-ip-replace.preview.json"), "--format", "markdown")
    assert text.startswith("plan guard: FORBIDDEN (exit 20)")
    assert markdown.stdout.startswith("### Plan guard: **FORBIDDEN**")
    assert "| FORBIDDEN | `urn:pulumi:" in markdown.stdout


def test_reads_standard_input():
    plan = (PLANS / "instance-replace.preview.json").read_text()
    result = pr_check("-", stdin=plan)
    assert result.returncode == exitcodes.NEEDS_REBUILD, result.stderr
    assert INSTANCE_URN in result.stdout


@pytest.mark.parametrize(
    "path, says",
    [
        (str(PLANS / "no-such-plan.json"), "does not exist"),
        (str(PLANS / "empty.json"), "the plan is empty"),
        (str(PLANS / "not-json.txt"), "line 1 is not JSON"),
        (str(PLANS / "wrong-shape.json"), "neither `pulumi preview --json` output"),
        (str(PLANS), "is a directory"),
    ],
)
def test_unreadable_input_exits_2_naming_the_file_and_the_fix(path, says):
    result = pr_check(path)
    assert result.returncode == exitcodes.USAGE
    assert result.stdout == ""
    assert path in result.stderr and says in result.stderr, result.stderr
    assert "pulumi preview --json > plan.json" in result.stderr
    assert "Traceback" not in result.stderr


IP_URN = urn(STATIC_IP, "raxx-tickets-ip")
PRELUDE = '{"sequence": 0, "timestamp": 1, "preludeEvent": {"config": {}}}'


@pytest.mark.parametrize(
    "text, says",
    [
        pytest.param(
            json.dumps({"steps": [{"op": "replace", "urn": IP_URN}], "cancelEvent": {}}),
            "engine event keys (cancelEvent)",
            id="digest-plus-cancel",
        ),
        pytest.param(
            json.dumps({"steps": [{"op": "delete", "urn": IP_URN}], "progressEvent": {}}),
            "engine event keys (progressEvent)",
            id="digest-plus-progress",
        ),
        pytest.param('{"steps": {}, "diagnostics": []}', "must be lists", id="steps-object"),
        pytest.param('{"steps": null}', "must be lists", id="steps-null"),
        pytest.param('{"duration": 1}', "has no `steps`", id="duration-only"),
        pytest.param('{"cancelEvent": {}}', "the preview did not finish", id="cancel-only"),
        pytest.param(
            PRELUDE
            + "\n"
            + json.dumps({"resourcePreEvent": {"metadata": {"urn": IP_URN, "op": "same"}}}),
            "the preview did not finish",
            id="truncated-log",
        ),
        pytest.param("[" * 200_000 + "]" * 200_000, "nested too deeply", id="deep-nesting"),
        pytest.param(
            '{"cancelEvent": {}}\n' + "[" * 200_000, "nested too deeply", id="deep-nesting-line"
        ),
    ],
)
def test_malformed_or_partial_plans_exit_2_with_a_message(tmp_path, text, says):
    """Input the engine never writes, or a log of a preview that did not finish: never exit 0."""
    plan = tmp_path / "plan.json"
    plan.write_text(text)
    result = pr_check(str(plan))
    assert result.returncode == exitcodes.USAGE, result.stdout + result.stderr
    assert result.stdout == ""
    assert says in result.stderr and str(plan) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_an_error_with_an_empty_message_is_forbidden(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text('{"steps": [], "diagnostics": [{"severity": "error", "message": ""}]}')
    result = pr_check(str(plan))
    assert result.returncode == exitcodes.FORBIDDEN, result.stdout + result.stderr
    assert "empty message" in result.stdout


def test_plain_preview_json_with_a_replace_carries_the_note():
    result = pr_check(str(PLANS / "instance-replace.preview.json"), "--format", "markdown")
    assert result.returncode == exitcodes.NEEDS_REBUILD
    assert "> **Note:**" in result.stdout and "--show-replacement-steps" in result.stdout


def test_empty_stdin_and_binary_file(tmp_path):
    result = pr_check("-", stdin="")
    assert result.returncode == exitcodes.USAGE
    assert "standard input" in result.stderr and "empty" in result.stderr
    binary = tmp_path / "plan.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    result = pr_check(str(binary))
    assert result.returncode == exitcodes.USAGE
    assert "not UTF-8" in result.stderr


def test_bad_arguments_exit_2():
    assert pr_check().returncode == exitcodes.USAGE
    result = pr_check(str(PLANS / "no-changes.events.jsonl"), "--format", "html")
    assert result.returncode == exitcodes.USAGE
    assert "invalid choice" in result.stderr


def test_help_explains_inputs_and_every_exit_code():
    result = pr_check("--help")
    assert result.returncode == 0
    for text in ("pulumi preview --json", "--event-log", "--format", "rebuild.py"):
        assert text in result.stdout
    for code in (exitcodes.OK, exitcodes.NEEDS_REBUILD, exitcodes.FORBIDDEN, exitcodes.USAGE):
        assert f"\n  {code} " in result.stdout, f"exit code {code} not documented"


def test_main_in_process_returns_the_verdict(capsys):
    """The same entry point without a process: what the driver or another tool can call."""
    import runpy

    module = runpy.run_path(str(SCRIPT))
    code = module["main"]([str(PLANS / "dns-delete.events.jsonl")])
    assert code == exitcodes.FORBIDDEN
    assert "DNS record" in capsys.readouterr().out
