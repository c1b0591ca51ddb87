"""scripts/rebuild.py's command line: help, bad input, exit codes, JSON outcome, resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from operations import exitcodes
from operations.progress import SilentProgress
from operations.rebuild import Adapters
from operations.rebuild_cli import main
from operations.retry import Clock
from tests.conftest import PROJECT_ROOT
from tests.rebuild_fakes import FakeEngine, FakeHost, FakeHttp, FakeLightsail
from tests.sim_clock import SimulatedClock


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(PROJECT_ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    return tmp_path


class Factory:
    def __init__(self, **engine):
        self.engine = FakeEngine(**engine)
        self.lightsail = FakeLightsail(created_at=lambda: f"generation-{self.engine.generation}")
        self.targets = []

    def __call__(self, target, args) -> Adapters:
        self.targets.append(target)
        sim = SimulatedClock()
        return Adapters(engine=self.engine, lightsail=self.lightsail, host=FakeHost(),
                        http=FakeHttp(), progress=SilentProgress(),
                        clock=Clock(now=sim.now, sleep=sim.sleep))


def run(project: Path, *argv: str, factory: Factory | None = None) -> int:
    base = ["--runs-dir", str(project / ".runs"), "--postmortem-dir", str(project / "pm")]
    return main([*argv, *base], adapter_factory=factory or Factory(), project_root=project)


def test_help_explains_phases_and_exit_codes():
    result = subprocess.run([sys.executable, "scripts/rebuild.py", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for word in ("pre-flight", "snapshot", "re-protect", "verify", "--resume", "--dry-run",
                 "--backup-taken", "exit codes", "UNSAFE".lower()):
        assert word.lower() in result.stdout.lower(), word


def test_dry_run_with_resume_is_a_usage_error(project, capsys):
    with pytest.raises(SystemExit) as exited:
        run(project, "--dry-run", "--resume")
    assert exited.value.code == exitcodes.USAGE


def test_unknown_stack_names_the_fix(project, capsys):
    assert run(project, "--stack", "staging", "--yes") == exitcodes.USAGE
    assert "pulumi stack init staging" in capsys.readouterr().err


def test_placeholder_in_stack_file_is_named(project, capsys):
    text = (project / "Pulumi.prod.yaml").read_text()
    text = text.replace("hostname: tickets.raxx.app", "hostname: REPLACE_WITH_HOSTNAME")
    (project / "Pulumi.prod.yaml").write_text(text)
    assert run(project, "--yes") == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "freescout:hostname" in err and "placeholder" in err


def test_resume_without_runs_is_a_usage_error(project, capsys):
    assert run(project, "--resume", "--yes") == exitcodes.USAGE
    assert "no unfinished rebuild run" in capsys.readouterr().err


def test_resume_of_unknown_run_lists_known_ones(project, capsys):
    assert run(project, "--resume", "20990101T000000Z", "--yes") == exitcodes.USAGE
    assert "no run journal named" in capsys.readouterr().err


def test_full_run_with_yes_and_json(project, capsys):
    factory = Factory()
    assert run(project, "--yes", "--json", "--trigger", "blueprint upgrade",
               factory=factory) == exitcodes.OK
    out = capsys.readouterr().out
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome["state"] == "succeeded"
    assert Path(outcome["postmortem"]).is_file()
    assert factory.targets[0].module_aliases[-1] == "customfolders"
    assert factory.engine.state_protect


def test_no_terminal_and_no_yes_refuses_before_the_replace(project, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115 - closed by pytest
    factory = Factory()
    code = run(project, factory=factory)
    assert code == exitcodes.USAGE
    assert "--yes" in capsys.readouterr().err
    assert factory.engine.ups == 0 and factory.engine.config_protect


def test_failed_run_resumes_by_default_to_the_latest(project, capsys):
    factory = Factory(transient_failures=9)
    assert run(project, "--yes", factory=factory) == exitcodes.FAILED
    assert "--resume" in capsys.readouterr().err
    factory.engine.transient_failures = 0
    assert run(project, "--yes", "--resume", factory=factory) == exitcodes.OK
    assert factory.engine.state_protect


def test_resume_of_a_succeeded_run_is_refused(project, capsys):
    factory = Factory()
    assert run(project, "--yes", factory=factory) == exitcodes.OK
    run_id = sorted(p.name for p in (project / ".runs").iterdir())[-1]
    assert run(project, "--yes", "--resume", run_id, factory=factory) == exitcodes.USAGE
    assert "already succeeded" in capsys.readouterr().err


def test_a_dry_run_is_never_resumed(project, capsys):
    factory = Factory()
    factory.engine.needs_replace = True
    factory.lightsail.snapshot_error = True  # not reached: a dry run takes no snapshot
    assert run(project, "--dry-run", factory=factory) == exitcodes.OK
    assert run(project, "--resume", "--yes", factory=factory) == exitcodes.USAGE
    assert "no unfinished rebuild run" in capsys.readouterr().err
    run_id = sorted(p.name for p in (project / ".runs").iterdir())[-1]
    assert run(project, "--resume", run_id, "--yes", factory=factory) == exitcodes.USAGE
    assert "never resumed" in capsys.readouterr().err


def test_environment_not_ready_is_usage_and_leaves_no_journal(project, capsys):
    from operations.errors import OpsError

    def broken_factory(target, args):
        raise OpsError("looking up static IP raxx-tickets-ip failed", cause="NoCredentialsError",
                       hint="check the AWS credentials in this shell")

    code = main(["--dry-run", "--json", "--runs-dir", str(project / ".runs")],
                adapter_factory=broken_factory, project_root=project)
    assert code == exitcodes.USAGE
    captured = capsys.readouterr()
    assert "nothing was changed" in captured.err and "AWS credentials" in captured.err
    assert json.loads(captured.out)["exit_code"] == exitcodes.USAGE
    assert not (project / ".runs").exists() or not list((project / ".runs").iterdir())


def test_project_fingerprint_ignores_protect_but_sees_other_changes(project):
    from operations.wiring import project_fingerprint

    (project / "__main__.py").write_text("print('program')\n")
    first = project_fingerprint(project, "prod")
    path = project / "Pulumi.prod.yaml"
    text = path.read_text()
    path.write_text(text.replace("freescout:protect: true", "freescout:protect: false"))
    assert project_fingerprint(project, "prod") == first, "the driver's own flip is not a change"
    path.write_text(text.replace("bundle_id: micro_3_0", "bundle_id: small_3_0"))
    assert project_fingerprint(project, "prod") != first
