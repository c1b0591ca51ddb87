"""The restore's logic and command line, with MemoryLightsail and MemoryState (tests/restore_fakes).

Proves the checks (each bad input stops before any change, with the message and next command),
the order of the actions, the wait for the instance, the rollback under another name, and the
exit codes of scripts/restore.py. The engine side is in test_restore_engine.py, the boto3 side in
test_restore_lightsail.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from operations import exitcodes
from operations.errors import DeadlineExceeded, OpsError, StackLocked, StoppedByCheck, UsageError
from operations.progress import SilentProgress
from operations.rebuild import Target
from operations.restore import (
    Timing,
    check_hostname,
    list_restore_points,
    restore_from_snapshot,
    rollback_instance_name,
)
from operations.restore_cli import RestoreAdapters, main
from operations.retry import Backoff
from tests.restore_fakes import MemoryLightsail, MemoryState, snapshot
from tests.sim_clock import SimulatedClock

POST = "raxx-tickets-modules-installed-20260503T231628Z"
OLDER_POST = "raxx-tickets-modules-installed-20260401T100000Z"
PRE = "raxx-tickets-pre-rebuild-20260504T120000Z"
TARGET = Target(
    stack="prod",
    instance_name="raxx-tickets",
    static_ip_name="raxx-tickets-ip",
    hostname="tickets.raxx.app",
    module_aliases=(),
)
STACK_FILE = """\
config:
  aws:region: us-east-1
  freescout:instance_name: raxx-tickets
  freescout:static_ip_name: raxx-tickets-ip
  freescout:hostname: tickets.raxx.app
  freescout:availability_zone: us-east-1a
  freescout:bundle_id: micro_3_0
"""


def lightsail(**kwargs) -> MemoryLightsail:
    kwargs.setdefault(
        "snapshots",
        {
            POST: snapshot(POST, created="2026-05-03T23:16:28+00:00"),
            OLDER_POST: snapshot(OLDER_POST, created="2026-04-01T10:00:00+00:00"),
            PRE: snapshot(PRE, created="2026-05-04T12:00:00+00:00"),
        },
    )
    kwargs.setdefault("static_ips", {"raxx-tickets-ip": None})
    return MemoryLightsail(**kwargs)


def restore(ls: MemoryLightsail, state: MemoryState | None = None, name: str = POST, **kwargs):
    clock = kwargs.pop("fake_clock", SimulatedClock())
    progress = kwargs.pop("progress", SilentProgress())
    return restore_from_snapshot(
        TARGET,
        name,
        lightsail=ls,
        state=state if state is not None else MemoryState(),
        progress=progress,
        clock=clock.clock(),
        timing=kwargs.pop("timing", Timing(running_deadline=600, poll_backoff=Backoff(5, 1.5, 30))),
        **kwargs,
    )


# ------------------------------------------------------------------ acting


def test_restore_creates_waits_attaches_then_aligns_the_state():
    ls, state, clock, progress = lightsail(), MemoryState(), SimulatedClock(), SilentProgress()
    result = restore(ls, state, fake_clock=clock, progress=progress)
    assert ls.changes == [
        f"create_instance_from_snapshot raxx-tickets {POST} us-east-1a micro_3_0",
        "attach_static_ip raxx-tickets-ip raxx-tickets",
    ]
    # The IP is attached only after the instance runs, and the state comes last.
    create = ls.calls.index(ls.changes[0])
    attach = ls.calls.index(ls.changes[1])
    polls = [c for c in ls.calls[create:attach] if c == "get_instance raxx-tickets"]
    assert len(polls) == 3  # pending, pending, running
    assert clock.pauses == [5, 7.5]
    assert state.calls == ["check", "probe_lock", "reconcile", "check"]
    assert any(
        "waiting for raxx-tickets to run" in ln and "pending" in ln for ln in progress.lines
    ), progress.lines
    assert result.state is not None and not result.state_needs_operator
    assert "no change to the instance" in result.render()
    assert result.as_dict()["state"]["situation"] == "in_state"


def test_wait_gives_up_at_the_deadline_and_says_how_to_finish():
    ls = lightsail(pending_polls=10_000)
    state = MemoryState()
    with pytest.raises(DeadlineExceeded) as caught:
        restore(ls, state, timing=Timing(running_deadline=60, poll_backoff=Backoff(5, 2, 30)))
    assert "not running within 60s" in caught.value.message
    assert "was created from" in caught.value.message
    assert f"--snapshot {POST} --finish" in (caught.value.hint or "")
    assert "reconcile" not in state.calls
    assert not any(c.startswith("attach_") for c in ls.calls)


def test_instance_that_stops_instead_of_running_fails_at_once():
    ls = lightsail(pending_polls=1, boot_state="stopped")
    with pytest.raises(OpsError, match="went to state 'stopped'"):
        restore(ls)


def test_state_failure_after_the_restore_names_what_exists_and_the_next_command():
    state = MemoryState(reconcile_error=OpsError("refresh of stack prod failed", hint="look"))
    ls = lightsail()
    with pytest.raises(OpsError) as caught:
        restore(ls, state)
    assert "raxx-tickets runs from" in caught.value.message
    assert "static IP attached" in caught.value.message
    assert "--finish" in (caught.value.hint or "")
    assert len(ls.changes) == 2


def test_finish_reuses_the_existing_instance():
    ls = lightsail(instances={"raxx-tickets": "running"})
    state = MemoryState()
    result = restore(ls, state, finish_existing=True)
    assert ls.changes == ["attach_static_ip raxx-tickets-ip raxx-tickets"]
    assert "reconcile" in state.calls and result.state is not None


def test_finish_without_an_instance_is_a_usage_error():
    with pytest.raises(UsageError, match="--finish needs instance"):
        restore(lightsail(), finish_existing=True)


def test_rollback_beside_the_failed_instance_leaves_the_state_to_the_operator():
    ls = lightsail(
        instances={"raxx-tickets": "running"}, static_ips={"raxx-tickets-ip": "raxx-tickets"}
    )
    state = MemoryState()
    name = rollback_instance_name(TARGET)
    result = restore(ls, state, name=PRE, new_instance_name=name)
    assert name == "raxx-tickets-rollback"
    assert ls.changes == [
        f"create_instance_from_snapshot raxx-tickets-rollback {PRE} us-east-1a micro_3_0",
        "attach_static_ip raxx-tickets-ip raxx-tickets-rollback",
    ]
    assert state.calls == []
    assert result.state is None and result.state_needs_operator
    text = result.render()
    assert "Pulumi state: NOT changed" in text
    assert "aws lightsail delete-instance --instance-name raxx-tickets" in text
    assert f"--snapshot {PRE}" in text


def test_program_that_still_replaces_the_instance_is_reported():
    result = restore(lightsail(), MemoryState(instance_op="replace"))
    assert result.state_needs_operator
    assert "revert the change" in result.render()


# ------------------------------------------------------------------ checks (nothing changes)


@pytest.mark.parametrize(
    ("setup", "error", "words"),
    [
        (dict(snapshots={}), UsageError, ["does not exist"]),
        (
            dict(snapshots={POST: snapshot(POST, "error")}),
            StoppedByCheck,
            ["state 'error'", "not 'available'"],
        ),
        (
            dict(snapshots={POST: snapshot(POST, "pending")}),
            StoppedByCheck,
            ["state 'pending' (40%)"],
        ),
        (
            dict(instances={"raxx-tickets": "running"}),
            StoppedByCheck,
            ["instance raxx-tickets already exists", "never deletes"],
        ),
        (dict(static_ips={}), StoppedByCheck, ["static IP raxx-tickets-ip does not exist"]),
        (dict(throttle="get_snapshot"), OpsError, ["kept throttling"]),
    ],
)
def test_bad_input_stops_before_any_change(setup, error, words):
    ls = lightsail(**setup)
    state = MemoryState()
    with pytest.raises(error) as caught:
        restore(ls, state)
    for word in words:
        assert word in caught.value.message
    assert ls.changes == []
    assert "reconcile" not in state.calls


def test_existing_instance_error_says_which_command_would_delete_it():
    with pytest.raises(StoppedByCheck) as caught:
        restore(lightsail(instances={"raxx-tickets": "running"}))
    hint = caught.value.hint or ""
    assert "aws lightsail delete-instance --instance-name raxx-tickets" in hint
    assert "--instance-name raxx-tickets-rollback" in hint


def test_locked_stack_stops_before_any_change():
    ls = lightsail()
    state = MemoryState(lock_error=StackLocked("stack prod is locked by another update"))
    with pytest.raises(StackLocked):
        restore(ls, state)
    assert ls.changes == []


def test_state_that_cannot_be_aligned_stops_before_any_change():
    ls = lightsail()
    state = MemoryState(
        check_error=UsageError("no instance and no saved copy", hint="--state-from")
    )
    with pytest.raises(UsageError):
        restore(ls, state)
    assert ls.changes == []


def test_declined_confirmation_changes_nothing():
    ls = lightsail()
    questions: list[str] = []
    with pytest.raises(StoppedByCheck, match="declined"):
        restore(ls, confirm=lambda q: questions.append(q) or False)
    assert questions and POST in questions[0]
    assert ls.changes == []


def test_hostname_rules():
    assert check_hostname(TARGET, None, allow_license_activation=False) is None
    assert check_hostname(TARGET, "Tickets.Raxx.App.", allow_license_activation=False) is None
    with pytest.raises(StoppedByCheck) as caught:
        check_hostname(TARGET, "tickets-staging.raxx.app", allow_license_activation=False)
    assert "bound to its domain" in (caught.value.cause or "")
    assert "burns one of each license's domain activations" in (caught.value.cause or "")
    assert "--allow-license-activation" in (caught.value.hint or "")
    warning = check_hostname(TARGET, "tickets-staging.raxx.app", allow_license_activation=True)
    assert warning and warning.startswith("WARNING")


def test_restore_points_are_labelled_newest_first():
    points = list_restore_points(lightsail(), "raxx-tickets")
    assert [(p.snapshot.name, p.kind) for p in points] == [
        (PRE, "pre-rebuild"),
        (POST, "post-install"),
        (OLDER_POST, "post-install"),
    ]


# ------------------------------------------------------------------ the command line


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.prod.yaml").write_text(STACK_FILE)
    return tmp_path


def run_cli(
    project: Path,
    argv: list[str],
    ls: MemoryLightsail,
    state: MemoryState | None = None,
    confirm=None,
):
    built: list[object] = []

    def factory(target, args):
        built.append(target)
        return RestoreAdapters(
            lightsail=ls,
            state=state or MemoryState(),
            progress=SilentProgress(),
            clock=SimulatedClock().clock(),
        )

    code = main(argv, adapter_factory=factory, project_root=project, confirm=confirm)
    return code, built


def test_cli_lists_snapshots_without_changing_anything(project, capsys):
    ls = lightsail(
        snapshots={
            POST: snapshot(POST, created="2026-05-03T23:16:28+00:00"),
            PRE: snapshot(PRE, "pending", created="2026-05-04T12:00:00+00:00"),
        }
    )
    code, _ = run_cli(project, [], ls)
    out = capsys.readouterr().out
    assert code == exitcodes.OK
    assert out.index(PRE) < out.index(POST)
    assert "pre-rebuild" in out and "pending" in out and "2026-05-04T12:00:00" in out
    assert f"--snapshot {POST}" in out  # the newest *available* one is offered
    assert ls.changes == []


def test_cli_list_as_json(project, capsys):
    code, _ = run_cli(project, ["--json"], lightsail())
    listed = json.loads(capsys.readouterr().out)
    assert code == 0 and listed[0] == {
        "name": PRE,
        "kind": "pre-rebuild",
        "state": "available",
        "created_at": "2026-05-04T12:00:00+00:00",
    }


def test_cli_restores_with_yes(project, capsys):
    ls = lightsail()
    code, _ = run_cli(project, ["--snapshot", POST, "--yes", "--json"], ls)
    out = capsys.readouterr().out
    assert code == exitcodes.OK, out
    assert json.loads(out.strip().splitlines()[-1])["instance"] == "raxx-tickets"
    assert len(ls.changes) == 2


def test_cli_without_yes_and_without_a_terminal_changes_nothing(project, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    ls = lightsail()
    code, _ = run_cli(project, ["--snapshot", POST], ls)
    assert code == exitcodes.USAGE
    assert "--yes" in capsys.readouterr().err
    assert ls.changes == []


@pytest.mark.parametrize(
    ("argv", "setup", "code", "text"),
    [
        (
            ["--stack", "nope", "--snapshot", POST, "--yes"],
            {},
            exitcodes.USAGE,
            "no stack file Pulumi.nope.yaml",
        ),
        (["--snapshot", "raxx-tickets-nope", "--yes"], {}, exitcodes.USAGE, "does not exist"),
        (["--snapshot", "bad name!", "--yes"], {}, exitcodes.USAGE, "not a valid Lightsail name"),
        (
            ["--snapshot", POST, "--yes"],
            dict(snapshots={POST: snapshot(POST, "error")}),
            exitcodes.STOPPED,
            "state 'error'",
        ),
        (
            ["--snapshot", POST, "--yes", "--hostname", "tickets-staging.raxx.app"],
            {},
            exitcodes.STOPPED,
            "burns one of each license's domain activations",
        ),
        (
            ["--snapshot", POST, "--yes"],
            dict(instances={"raxx-tickets": "stopped"}),
            exitcodes.STOPPED,
            "already exists",
        ),
        (
            ["--snapshot", POST, "--yes"],
            dict(static_ips={}),
            exitcodes.STOPPED,
            "static IP raxx-tickets-ip does not exist",
        ),
        (
            ["--snapshot", POST, "--yes"],
            dict(throttle="create_instance_from_snapshot"),
            exitcodes.FAILED,
            "kept throttling",
        ),
        (
            ["--snapshot", POST, "--yes", "--state-from", "/nonexistent/instance-state.json"],
            {},
            exitcodes.USAGE,
            "--state-from: no file",
        ),
    ],
)
def test_cli_bad_input(project, capsys, argv, setup, code, text):
    ls = lightsail(**setup)
    got, _ = run_cli(project, argv, ls)
    err = capsys.readouterr().err
    assert got == code, err
    assert text in err
    assert not any(c.startswith("attach_") for c in ls.calls)


def test_cli_locked_stack_is_exit_locked(project, capsys):
    state = MemoryState(
        lock_error=StackLocked(
            "stack prod is locked by another update", hint="pulumi cancel --stack prod"
        )
    )
    ls = lightsail()
    code, _ = run_cli(project, ["--snapshot", POST, "--yes"], ls, state)
    assert code == exitcodes.LOCKED
    assert "locked" in capsys.readouterr().err and ls.changes == []


def test_cli_other_hostname_allowed_prints_the_cost(project, capsys):
    code, _ = run_cli(
        project,
        [
            "--snapshot",
            POST,
            "--yes",
            "--hostname",
            "tickets-staging.raxx.app",
            "--allow-license-activation",
        ],
        lightsail(),
    )
    assert code == exitcodes.OK
    assert "WARNING" in capsys.readouterr().out


def test_cli_saved_copy_from_another_stack_is_refused(project, capsys, tmp_path):
    copy = tmp_path / "instance-state.json"
    copy.write_text(
        json.dumps(
            {
                "format": 1,
                "stack": "staging",
                "resource": {"urn": "urn:pulumi:staging::freescout::x::y"},
            }
        )
    )
    code, _ = run_cli(
        project, ["--snapshot", POST, "--yes", "--state-from", str(copy)], lightsail()
    )
    assert code == exitcodes.USAGE
    assert "saved from stack 'staging'" in capsys.readouterr().err


def test_cli_help_explains_steps_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for code in (
        exitcodes.OK,
        exitcodes.FAILED,
        exitcodes.USAGE,
        exitcodes.STOPPED,
        exitcodes.LOCKED,
    ):
        assert f"\n  {code}   " in out
    assert "--allow-license-activation" in out and "available" in out


def test_cli_options_that_need_a_snapshot(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--finish"])
    assert done.value.code == exitcodes.USAGE


def test_name_for_rollback_prefers_the_stacks_own_name_when_free():
    from operations.restore import name_for_rollback

    assert name_for_rollback(TARGET, lightsail()) is None
    taken = lightsail(instances={"raxx-tickets": "running"})
    assert name_for_rollback(TARGET, taken) == "raxx-tickets-rollback"


def test_locked_stack_after_the_instance_exists_is_a_failure_not_nothing_changed():
    state = MemoryState(reconcile_error=StackLocked("stack prod is locked by another update"))
    with pytest.raises(OpsError) as caught:
        restore(lightsail(), state)
    assert caught.value.exit_code == exitcodes.FAILED
    assert "--finish" in (caught.value.hint or "")
