"""scripts/pr_check.py as a pull-request check runs it: a real process, its output and exit code.

The plans are the hand-made files in tests/fixtures/guard/ (written in the engine's shapes, see
test_guard.py); the real engine's output is judged in test_guard_engine_fixtures.py.
"""

from __future__ import annotations

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
