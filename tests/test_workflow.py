"""The pull-request workflow: actionlint, shellcheck, and its shell steps run for real with bash.

The steps' scripts are taken from the workflow file and run the way GitHub runs `shell: bash`
(`bash --noprofile --norc -eo pipefail FILE`), with fakes only where GitHub's runner is needed:
a fake `pulumi` (its exit code and JSON) and a fake `gh` (records calls). What this does not
prove: GitHub's expression evaluation, the pulumi/actions install, and GitHub's API answers.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, find_tool, need

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "preview.yml"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    return load()["jobs"]["preview"]["steps"]


def step(step_id: str) -> dict:
    found = [s for s in steps() if s.get("id") == step_id]
    assert len(found) == 1, f"one step with id {step_id}"
    return found[0]


def on_events(data: dict) -> dict:
    # YAML 1.1 reads the key `on` as True.
    return data.get("on", data.get(True))


# ---------------------------------------------------------------- linters


@pytest.fixture
def actionlint() -> str:
    path = find_tool("actionlint")
    need(
        path is not None,
        "actionlint",
        "run 'sh tools/setup.sh' (it builds github.com/rhysd/actionlint/cmd/actionlint@v1.7.7)",
    )
    assert path is not None
    return path


@pytest.fixture
def shellcheck() -> str:
    path = find_tool("shellcheck")
    need(path is not None, "shellcheck", "sudo apt-get install shellcheck")
    assert path is not None
    return path


def test_actionlint_passes_with_shellcheck(actionlint, shellcheck):
    env = os.environ | {"PATH": f"{Path(shellcheck).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [actionlint, "-no-color", str(WORKFLOW)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_really_checks_this_file(actionlint, tmp_path):
    """A broken copy must fail: the passing lint above is not an empty run."""
    broken = tmp_path / ".github" / "workflows" / "preview.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text().replace("steps.preview.outputs.exit", "steps.nope.outputs.exit")
    broken.write_text(text)
    done = subprocess.run([actionlint, "-no-color", str(broken)], capture_output=True, text=True)
    assert done.returncode != 0 and "nope" in done.stdout


def test_every_run_script_is_shellcheck_clean(shellcheck, tmp_path):
    for number, item in enumerate(steps()):
        if "run" not in item:
            continue
        assert item.get("shell") == "bash", f"step {item.get('name')} must say shell: bash"
        script = tmp_path / f"step{number}.sh"
        script.write_text(item["run"])
        done = subprocess.run(
            [shellcheck, "-s", "bash", str(script)], capture_output=True, text=True
        )
        assert done.returncode == 0, f"{item.get('name')}:\n{done.stdout}"


# ---------------------------------------------------------------- structure


def test_trigger_permissions_and_secrets():
    data = load()
    assert "pull_request" in on_events(data)
    assert data["permissions"] == {"contents": "read", "pull-requests": "write"}
    job = data["jobs"]["preview"]
    assert "permissions" not in job, "no job-level widening of permissions"
    for name in (
        "PULUMI_ACCESS_TOKEN",
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "CLOUDFLARE_API_TOKEN",
    ):
        assert job["env"][name] == f"${{{{ secrets.{name} }}}}"
        assert name in WORKFLOW.read_text().split("name: preview")[0], f"{name} not in header"


def test_uses_the_official_actions_pinned_to_a_major_version():
    uses = [s["uses"] for s in steps() if "uses" in s]
    pulumi = [u for u in uses if u.startswith("pulumi/actions@")]
    assert len(pulumi) == 1 and pulumi[0].split("@")[1].startswith("v")
    assert all("@" in u for u in uses)
    python = next(s for s in steps() if s.get("uses", "").startswith("actions/setup-python@"))
    assert str(python["with"]["python-version"]) == "3.11"
    order = [s.get("uses", s.get("id", s.get("name"))) for s in steps()]
    assert order.index(pulumi[0]) < order.index("preview") < order.index("judge")
    install = next(s for s in steps() if s.get("name") == "Install requirements")
    assert "requirements.txt" in install["run"]


def test_preview_writes_json_of_stack_prod_and_the_guard_reads_it():
    preview = step("preview")["run"]
    assert "pulumi preview --stack prod --json" in preview and "> plan.json" in preview
    assert "--show-replacement-steps" in preview, "a delete during a replacement must show"
    assert "python scripts/pr_check.py plan.json --format markdown" in step("judge")["run"]


def test_no_expression_is_expanded_inside_a_script():
    """Values reach scripts through env, never `${{ }}` in the script (no injection)."""
    for item in steps():
        assert "${{" not in item.get("run", ""), item.get("name")


# ---------------------------------------------------------------- the steps, run with bash


def run_step(script: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str, str]:
    """Run a step like GitHub's `shell: bash`; returns exit code, stdout, summary, outputs."""
    need(shutil.which("bash") is not None, "bash", "sudo apt-get install bash")
    (cwd / "step.sh").write_text(script)
    summary, outputs = cwd / "summary.md", cwd / "outputs.txt"
    summary.write_text("")
    outputs.write_text("")
    full_env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(cwd),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_REPOSITORY": "raxx/freescout",
    } | env
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "step.sh"],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr, summary.read_text(), outputs.read_text()


FAKE_PR_CHECK = """\
import os, sys
assert sys.argv[1:] == ["plan.json", "--format", "markdown"], sys.argv
print("FAKE VERDICT TABLE")
sys.exit(int(os.environ["FAKE_VERDICT"]))
"""


@pytest.mark.parametrize(
    ("verdict", "preview_exit", "step_exit", "annotation", "headline"),
    [
        (0, "0", 0, None, "**Safe**"),
        (0, "255", 1, "::error title=Preview failed::", "**Preview failed**"),
        (10, "0", 0, "::warning title=Needs scripts/rebuild.py::", "NEEDS `scripts/rebuild.py`"),
        (10, "255", 0, "::warning title=Needs scripts/rebuild.py::", "python scripts/rebuild.py"),
        (20, "255", 1, "::error title=Forbidden change::", "**FORBIDDEN**"),
        (2, "255", 1, "::error title=Unreadable plan::", "**Unreadable plan**"),
        (1, "0", 1, "::error title=Plan guard failed::", "exited 1"),
    ],
)
def test_judge_step_exit_code_handling(
    tmp_path, verdict, preview_exit, step_exit, annotation, headline
):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "pr_check.py").write_text(FAKE_PR_CHECK)
    (tmp_path / "plan.json").write_text("{}")
    env = {"FAKE_VERDICT": str(verdict), "PREVIEW_EXIT": preview_exit}

    code, log, summary, outputs = run_step(step("judge")["run"], tmp_path, env)

    assert code == step_exit, log
    assert f"verdict={verdict}\n" in outputs
    assert headline in summary and "FAKE VERDICT TABLE" in summary
    assert (tmp_path / "comment.md").read_text() == summary
    if annotation:
        assert annotation in log
    else:
        assert "::error" not in log and "::warning" not in log


def test_judge_step_with_the_real_pr_check_on_an_empty_plan(tmp_path):
    """The call matches pr_check's real CLI: an empty plan is 'unreadable' (2) and fails."""
    (tmp_path / "scripts").symlink_to(PROJECT_ROOT / "scripts")
    (tmp_path / "plan.json").write_text("")
    code, log, summary, outputs = run_step(step("judge")["run"], tmp_path, {"PREVIEW_EXIT": "255"})
    assert code == 1, log
    assert "verdict=2\n" in outputs and "Unreadable plan" in summary


def write_tool(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("pulumi_exit", [0, 255])
def test_preview_step_keeps_the_json_of_a_failed_preview(tmp_path, pulumi_exit):
    bin_dir = tmp_path / "bin"
    write_tool(
        bin_dir,
        "pulumi",
        f'echo "$@" > args.txt\necho \'{{"steps": []}}\'\necho diag >&2\nexit {pulumi_exit}\n',
    )
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    code, log, _, outputs = run_step(step("preview")["run"], tmp_path, env)
    assert code == 0, log
    assert f"exit={pulumi_exit}\n" in outputs
    assert (tmp_path / "plan.json").read_text() == '{"steps": []}\n'
    assert (tmp_path / "args.txt").read_text().split() == [
        "preview",
        "--stack",
        "prod",
        "--json",
        "--show-replacement-steps",
        "--non-interactive",
    ]


@pytest.mark.parametrize(("existing", "method"), [("", "POST"), ("4242", "PATCH")])
def test_comment_step_creates_or_updates_one_comment(tmp_path, existing, method):
    bin_dir = tmp_path / "bin"
    write_tool(
        bin_dir,
        "gh",
        'printf "%s\\n" "$*" >> gh-calls.txt\n'
        f'case "$*" in *--jq*) [ -n "{existing}" ] && echo "{existing}" ;; esac\nexit 0\n',
    )
    (tmp_path / "comment.md").write_text("verdict body\n")
    comment = next(s for s in steps() if s.get("name", "").startswith("Comment"))
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GH_TOKEN": "fake",
        "PR_NUMBER": "7",
    }
    code, log, _, _ = run_step(comment["run"], tmp_path, env)
    assert code == 0, log
    calls = (tmp_path / "gh-calls.txt").read_text().splitlines()
    assert calls[0].startswith("api repos/raxx/freescout/issues/7/comments --paginate")
    assert f"--method {method}" in calls[1]
    target = "issues/comments/4242" if existing else "issues/7/comments"
    assert target in calls[1] and "body=@comment-body.md" in calls[1]
    body = (tmp_path / "comment-body.md").read_text()
    assert body.startswith("<!-- raxx-preview-verdict -->\n") and "verdict body" in body
    assert comment["if"].startswith("${{ !cancelled()") and comment["continue-on-error"] is True
