"""The rebuild cycle's logic, with in-memory adapters (see tests/rebuild_fakes.py for their limits).

The same driver runs against the real engine in tests/test_rebuild_engine.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operations import exitcodes
from operations.host_checks import DataCheck, DataState
from operations.journal import Journal, JournalStore, Phase, RunState, Status
from operations.progress import SilentProgress
from operations.rebuild import Adapters, Options, Rebuild, Target, Timing
from operations.retry import Backoff, Clock
from tests.rebuild_fakes import (
    FakeEngine,
    FakeHost,
    FakeHttp,
    FakeLightsail,
    SimulatedCrash,
)
from tests.rebuild_fakes import crash_after as crash_after_phase
from tests.sim_clock import SimulatedClock

TARGET = Target(
    stack="prod",
    instance_name="raxx-tickets",
    static_ip_name="raxx-tickets-ip",
    hostname="tickets.raxx.app",
    module_aliases=("tags", "customfields", "workflows"),
)
FAST = Timing(
    snapshot_deadline=5,
    up_attempts=3,
    up_retry_pause=0.0,
    site_deadline=5,
    poll_backoff=Backoff(first=1.0, factor=1.0, maximum=1.0),
)


class World:
    def __init__(self, tmp_path: Path, **engine_kwargs):
        self.tmp = tmp_path
        self.engine = FakeEngine(**engine_kwargs)
        self.lightsail = FakeLightsail(created_at=lambda: f"generation-{self.engine.generation}")
        self.host = FakeHost()
        self.http = FakeHttp()
        self.progress = SilentProgress()
        self.store = JournalStore(tmp_path / "runs")
        self.clock = SimulatedClock()
        self.answer = True

    def adapters(self) -> Adapters:
        return Adapters(
            engine=self.engine,
            lightsail=self.lightsail,
            host=self.host,
            http=self.http,
            progress=self.progress,
            clock=Clock(now=self.clock.now, sleep=self.clock.sleep),
            wall_clock=lambda: datetime(2026, 12, 3, 17, 0, 0, tzinfo=UTC),
            confirm=lambda question: self.answer,
        )

    def run(self, journal: Journal | None = None, **options):
        journal = journal or self.store.new("prod")
        rebuild = Rebuild(
            TARGET,
            self.adapters(),
            journal,
            Options(postmortem_dir=self.tmp / "postmortems", **options),
        )
        rebuild.timing = FAST
        return rebuild.run(), journal


def test_happy_path_replaces_reprotects_verifies_and_records(tmp_path):
    world = World(tmp_path)
    outcome, journal = world.run(trigger="blueprint upgrade")
    assert outcome.exit_code == exitcodes.OK, outcome.message
    assert all(journal.status(p) is Status.DONE for p in Phase), journal.phases
    assert world.engine.generation == 2, "the instance must have been replaced once"
    assert world.engine.state_protect and world.engine.config_protect
    assert len(world.lightsail.created) == 2, "pre-rebuild and post-install snapshots"
    assert world.lightsail.created[0] == "raxx-tickets-pre-rebuild-20261203T170000Z"
    text = outcome.postmortem.read_text()
    assert "Trigger: blueprint upgrade" in text
    assert "Apply result: succeeded" in text
    assert "raxx-tickets-pre-rebuild-20261203T170000Z" in text
    assert "4 add, 0 change, 4 destroy" in text
    assert outcome.postmortem.name == "freescout-rebuild-2026-12-03.md"


def test_protect_is_off_only_for_the_replacing_up(tmp_path):
    world = World(tmp_path)
    world.run()
    calls = world.engine.calls
    # plan: off, preview, back on at once; replace: off, up; re-protect: on, up.
    first_off = calls.index("set_protect(False)")
    assert calls[first_off + 1] == "preview" and calls[first_off + 2] == "set_protect(True)"
    replace_off = calls.index("set_protect(False)", first_off + 1)
    assert calls[replace_off + 1].startswith("up(")
    assert calls[replace_off + 2] == "set_protect(True)"


@pytest.mark.parametrize(
    "state,users,conversations",
    [(DataState.HAS_DATA, 1, 3), (DataState.HAS_DATA, 2, 0), (DataState.UNKNOWN, None, None)],
)
def test_data_on_the_host_stops_before_any_change(tmp_path, state, users, conversations):
    world = World(tmp_path)
    world.host.data = DataCheck(state, conversations, users, "ERROR 1146")
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.STOPPED
    assert "--backup-taken" in outcome.message
    assert world.engine.ups == 0 and world.engine.generation == 1
    assert world.engine.config_protect and world.engine.state_protect
    assert journal.state is RunState.STOPPED


def test_backup_taken_lets_real_data_through(tmp_path):
    world = World(tmp_path)
    world.host.data = DataCheck(DataState.HAS_DATA, 12, 3)
    outcome, _ = world.run(backup_taken=True)
    assert outcome.exit_code == exitcodes.OK, outcome.message


def test_forbidden_plan_stops_and_names_the_resource(tmp_path):
    world = World(tmp_path, forbidden_change=True)
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.STOPPED
    assert "raxx-tickets-ip" in outcome.message
    assert world.engine.ups == 0 and world.engine.config_protect


def test_plan_without_replacement_says_use_pulumi_up(tmp_path):
    world = World(tmp_path, needs_replace=False)
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.STOPPED
    assert "pulumi up" in outcome.message
    assert world.engine.ups == 0


def test_dry_run_changes_nothing_and_takes_no_snapshot(tmp_path):
    world = World(tmp_path)
    outcome, journal = world.run(dry_run=True)
    assert outcome.exit_code == exitcodes.OK
    assert "would" in outcome.message and "raxx-tickets-pre-rebuild-" in outcome.message
    assert world.lightsail.created == [] and world.engine.ups == 0
    assert world.engine.config_protect
    assert journal.state is RunState.DRY_RUN


def test_missing_instance_stops(tmp_path):
    world = World(tmp_path)
    world.lightsail.instance_exists = False
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.STOPPED
    assert "does not exist" in outcome.message


def test_operator_declining_changes_nothing(tmp_path):
    world = World(tmp_path)
    world.answer = False
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.STOPPED
    assert world.engine.ups == 0 and world.engine.generation == 1


def test_transient_ssh_failure_is_retried_after_a_pause(tmp_path):
    world = World(tmp_path, transient_failures=2)
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.OK, outcome.message
    assert world.engine.needs_replace is False and world.engine.state_protect
    assert len([e for e in journal.events if "transient failure" in e["event"]]) == 2


def test_transient_failures_are_bounded(tmp_path):
    world = World(tmp_path, transient_failures=5)
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.FAILED
    assert journal.status(Phase.REPLACE) is Status.FAILED
    assert world.engine.state_protect and world.engine.config_protect, "ends protected"
    assert "--resume" in outcome.message


def test_snapshot_error_stops_before_replace(tmp_path):
    world = World(tmp_path)
    world.lightsail.snapshot_error = True
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.FAILED
    assert world.engine.ups == 0 and world.engine.config_protect
    assert "untouched" in outcome.message


def test_verify_failure_leaves_instance_protected_and_names_rollback(tmp_path):
    world = World(tmp_path)
    world.host.cloud_init_error = "status: error"
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.FAILED
    assert journal.status(Phase.VERIFY) is Status.FAILED
    assert world.engine.state_protect
    assert "scripts/restore.py" in outcome.message
    assert "Apply result: partial" in outcome.postmortem.read_text()


def test_site_must_answer_200_or_302(tmp_path):
    world = World(tmp_path)
    world.http.statuses = [500]
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.FAILED
    assert "did not answer 200 or 302" in outcome.message


def test_failed_full_up_falls_back_to_targeted_up_to_protect(tmp_path):
    world = World(tmp_path)
    world.host.modules_ok = False
    world.engine.fail_full_up_only = True

    original_up = world.engine.up

    def up_failing_after_replace(*, targets=None):
        if world.engine.generation >= 2 and not targets:
            world.engine.state_protect = False
            raise RuntimeError("provisioning step failed")
        return original_up(targets=targets)

    world.engine.up = up_failing_after_replace  # type: ignore[method-assign]
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.FAILED, outcome.message
    assert any(c.startswith("up(['urn:") for c in world.engine.calls), world.engine.calls
    assert world.engine.state_protect


def test_protection_not_confirmed_is_unsafe(tmp_path):
    world = World(tmp_path)

    original_up = world.engine.up

    def up(*, targets=None):
        if world.engine.generation >= 2:
            raise RuntimeError("engine crashed")
        result = original_up(targets=targets)
        return result

    world.engine.up = up  # type: ignore[method-assign]
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.UNSAFE
    assert "PROTECTION NOT CONFIRMED" in outcome.message


BOUNDARIES = list(Phase)


@pytest.mark.parametrize("crash_after", BOUNDARIES, ids=[p.value for p in BOUNDARIES])
def test_crash_at_every_phase_boundary_then_resume(tmp_path, monkeypatch, crash_after):
    world = World(tmp_path)
    crash_after_phase(monkeypatch, crash_after)
    with pytest.raises(SimulatedCrash):
        world.run()
    run_id = world.store.run_ids()[-1]
    resumed = world.store.latest_resumable("prod")
    assert resumed.run_id == run_id
    outcome, journal = world.run(journal=resumed)
    assert outcome.exit_code == exitcodes.OK, outcome.message
    assert all(journal.status(p) is Status.DONE for p in Phase)
    pre = [n for n in world.lightsail.created if "pre-rebuild" in n]
    assert len(pre) == 1, f"one pre-rebuild snapshot per run, got {pre}"
    assert world.engine.generation == 2, "replaced exactly once"
    assert world.engine.state_protect and world.engine.config_protect


def test_journal_is_private_and_atomic(tmp_path):
    world = World(tmp_path)
    _, journal = world.run()
    mode = journal.path.stat().st_mode & 0o777
    assert mode == 0o600
    assert not list(journal.path.parent.glob(".journal-*")), "no temp files left"
    reloaded = world.store.load(journal.run_id)
    assert reloaded.state is RunState.SUCCEEDED
    assert reloaded.facts["snapshot_name"] == journal.facts["snapshot_name"]


def test_second_rebuild_same_day_appends_to_postmortem(tmp_path):
    first = World(tmp_path)
    outcome1, _ = first.run(trigger="first")
    second = World(tmp_path)
    outcome2, _ = second.run(trigger="second")
    assert outcome1.postmortem == outcome2.postmortem
    text = outcome2.postmortem.read_text()
    assert "Trigger: first" in text and "Trigger: second" in text


def test_rollback_on_failure_restores_the_pre_rebuild_snapshot(tmp_path):
    world = World(tmp_path)
    world.host.modules_ok = False
    restored: list[str] = []

    def rollback(snapshot: str) -> str:
        restored.append(snapshot)
        return f"restored raxx-tickets-rollback from {snapshot}"

    adapters = world.adapters()
    adapters.rollback = rollback
    journal = world.store.new("prod")
    rebuild = Rebuild(
        TARGET, adapters, journal, Options(postmortem_dir=tmp_path / "pm", rollback_on_failure=True)
    )
    rebuild.timing = FAST
    outcome = rebuild.run()
    assert outcome.exit_code == exitcodes.FAILED
    assert restored == [journal.facts["snapshot_name"]]
    assert "restored raxx-tickets-rollback" in outcome.message
    text = outcome.postmortem.read_text()
    assert "Apply result: rolled back" in text and "restored raxx-tickets-rollback" in text


def test_no_rollback_unless_verification_failed(tmp_path):
    world = World(tmp_path, transient_failures=9)
    called: list[str] = []
    adapters = world.adapters()
    adapters.rollback = called.append  # type: ignore[assignment]
    rebuild = Rebuild(
        TARGET,
        adapters,
        world.store.new("prod"),
        Options(postmortem_dir=tmp_path / "pm", rollback_on_failure=True),
    )
    rebuild.timing = FAST
    assert rebuild.run().exit_code == exitcodes.FAILED
    assert called == [], "a failed replace is resumed, not rolled back"


def test_instance_state_is_saved_beside_the_journal_before_the_replace(tmp_path):
    world = World(tmp_path)
    saved: list[Path] = []

    def save(path: Path) -> None:
        assert world.engine.generation == 1, "saved before the replacement"
        path.write_text("{}")
        saved.append(path)

    adapters = world.adapters()
    adapters.save_instance_state = save
    journal = world.store.new("prod")
    rebuild = Rebuild(TARGET, adapters, journal, Options(postmortem_dir=tmp_path / "pm"))
    rebuild.timing = FAST
    assert rebuild.run().exit_code == exitcodes.OK
    assert saved == [journal.path.parent / "instance-state.json"]
    assert journal.facts["instance_state"] == str(saved[0])


def test_resume_judges_the_plan_again_before_destroying(tmp_path, monkeypatch):
    world = World(tmp_path)
    crash_after_phase(monkeypatch, Phase.SNAPSHOT)
    with pytest.raises(SimulatedCrash):
        world.run()
    world.engine.forbidden_change = True  # someone changed the program meanwhile
    outcome, _ = world.run(journal=world.store.latest_resumable("prod"))
    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert "raxx-tickets-ip" in outcome.message
    assert world.engine.ups == 0 and world.engine.generation == 1
    assert world.engine.config_protect


def test_resume_checks_the_data_again_while_the_old_instance_stands(tmp_path, monkeypatch):
    world = World(tmp_path)
    crash_after_phase(monkeypatch, Phase.PLAN)
    with pytest.raises(SimulatedCrash):
        world.run()
    world.host.data = DataCheck(DataState.HAS_DATA, 4, 1)  # tickets arrived meanwhile
    outcome, _ = world.run(journal=world.store.latest_resumable("prod"))
    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert world.engine.ups == 0 and world.engine.generation == 1


def test_a_change_during_the_snapshot_wait_is_judged_before_the_destroy(tmp_path):
    world = World(tmp_path)
    digests = iter(["before", "after", "after"])
    adapters = world.adapters()
    adapters.fingerprint = lambda: next(digests)
    rebuild = Rebuild(
        TARGET, adapters, world.store.new("prod"), Options(postmortem_dir=tmp_path / "pm")
    )
    rebuild.timing = FAST
    outcome = rebuild.run()
    assert outcome.exit_code == exitcodes.OK, outcome.message
    assert world.engine.calls.count("preview") == 3, "plan, plan again, re-protect check"
    assert any("judging the plan again" in line for line in world.progress.lines)


def test_no_second_plan_when_nothing_changed(tmp_path):
    world = World(tmp_path)
    adapters = world.adapters()
    adapters.fingerprint = lambda: "same"
    rebuild = Rebuild(
        TARGET, adapters, world.store.new("prod"), Options(postmortem_dir=tmp_path / "pm")
    )
    rebuild.timing = FAST
    assert rebuild.run().exit_code == exitcodes.OK
    assert world.engine.calls.count("preview") == 2, "plan and the re-protect check only"


def test_stop_on_resume_after_a_begun_replacement_still_protects_without_a_full_up(tmp_path):
    world = World(tmp_path, transient_failures=9)
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.FAILED
    assert world.engine.state_protect, "the targeted up protected it"
    world.engine.state_protect = False  # as if killed while it was unprotected
    world.engine.transient_failures = 0
    world.engine.forbidden_change = True  # and the program changed meanwhile
    calls_before = len(world.engine.calls)

    outcome, _ = world.run(journal=world.store.latest_resumable("prod"))

    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert world.engine.state_protect, "protected again"
    later = world.engine.calls[calls_before:]
    assert "up()" not in later, f"no unguarded full up of a forbidden change: {later}"
    assert any(c.startswith("up(['urn:") for c in later), later


def test_an_instance_restored_since_is_checked_before_a_resume_destroys_it(tmp_path):
    world = World(tmp_path, transient_failures=9)
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.FAILED
    # The operator restores the pre-rebuild snapshot; tickets arrive on the restored instance.
    world.engine.generation = 3
    world.engine.needs_replace, world.engine.provisioning_pending = True, False
    world.engine.transient_failures = 0
    world.host.data = DataCheck(DataState.HAS_DATA, 42, 3)

    outcome, _ = world.run(journal=world.store.latest_resumable("prod"))

    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert "not the one this run found" in outcome.message
    assert world.engine.generation == 3, "the restored instance was not destroyed"
    assert "protected (confirmed in state)" in outcome.message


def test_the_data_is_checked_again_when_the_last_check_is_old(tmp_path):
    world = World(tmp_path)
    minutes = iter(range(0, 10_000, 10))
    start = datetime(2026, 12, 3, 17, 0, 0, tzinfo=UTC)
    adapters = world.adapters()
    adapters.wall_clock = lambda: start + timedelta(minutes=next(minutes))
    answers = iter([DataCheck(DataState.EMPTY, 0, 1), DataCheck(DataState.HAS_DATA, 7, 1)])
    world.host.data_check = lambda: next(answers)  # type: ignore[method-assign]
    rebuild = Rebuild(TARGET, adapters, world.store.new("prod"),
                      Options(postmortem_dir=tmp_path / "pm"))
    rebuild.timing = FAST
    outcome = rebuild.run()
    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert world.engine.generation == 1 and world.engine.ups == 0


def test_a_stop_on_resume_after_the_replace_reports_protection(tmp_path):
    world = World(tmp_path)
    original_up = world.engine.up

    def up_then_killed(*, targets=None):
        result = original_up(targets=targets)
        if world.engine.generation == 2 and not world.engine.config_protect:
            raise SimulatedCrash("killed right after the replacing up")
        return result

    world.engine.up = up_then_killed  # type: ignore[method-assign]
    with pytest.raises(SimulatedCrash):
        world.run()
    world.engine.up = original_up  # type: ignore[method-assign]
    assert world.engine.state_protect is False, "killed in the unprotected window"
    world.engine.forbidden_change = True

    outcome, _ = world.run(journal=world.store.latest_resumable("prod"))

    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert "protected (confirmed in state)" in outcome.message
    assert world.engine.state_protect is True
