"""The whole rebuild cycle against the REAL Pulumi engine (stand-in stack, local file backend).

Proven here with the real engine: the driver's preview with protect off is judged "rebuild" from
the engine's own steps; the replacement deletes before it creates; the static IP and DNS record
keep their ids; the protect bit is back in the exported state; the follow-up preview is clean; a
transient SSH failure of provisioning is retried; when even the full `up` keeps failing, a `up`
targeted at the instance still writes the protect bit; a crash right after the replace resumes
to a protected, verified stack; a known secret never reaches the journal, postmortem or progress.

Stand-ins (and what they do not prove): Lightsail, the host and HTTP are the in-memory fakes of
tests/rebuild_fakes.py (their adapters are tested against Stubber and real local servers
elsewhere); the cloud resources are Python dynamic providers, not the AWS/Cloudflare providers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pulumi import automation as auto

from operations import exitcodes
from operations.engine import AutomationEngine
from operations.journal import Journal, JournalStore, Phase, RunState, Status
from operations.progress import SilentProgress
from operations.rebuild import Adapters, Options, Rebuild, Target, Timing
from operations.restore import save_instance_state
from operations.retry import Backoff, Clock
from tests.conftest import find_tool, need
from tests.engine_project import cloud
from tests.engine_project.program import INSTANCE_RESOURCE
from tests.engine_project.roles import STANDIN_ROLES
from tests.engine_project.stack import StandinPaths, standin_stack
from tests.rebuild_fakes import FakeHost, FakeHttp, FakeLightsail, SimulatedCrash, crash_after
from tests.sim_clock import SimulatedClock

pytestmark = pytest.mark.engine

SECRET = "S3cret-standin-db-pass-7f1c"
TARGET = Target(
    stack="prod",
    instance_name="raxx-tickets",
    static_ip_name="raxx-tickets-ip",
    hostname="tickets.raxx.app",
    module_aliases=("tags",),
)
FAST = Timing(
    snapshot_deadline=5,
    up_attempts=2,
    up_retry_pause=0.0,
    site_deadline=5,
    poll_backoff=Backoff(first=1.0, factor=1.0, maximum=1.0),
)


class StandinWorld:
    def __init__(self, root: Path, cli: str, name: str):
        self.paths = StandinPaths(root)
        self.stack = standin_stack(root, cli, stack_name=name)
        self.stack.set_config("standin:db_password", auto.ConfigValue(SECRET, secret=True))
        self.progress = SilentProgress()
        self.engine = AutomationEngine(
            self.stack, instance=INSTANCE_RESOURCE, on_progress=self.progress.say
        )
        self.lightsail = FakeLightsail()
        self.store = JournalStore(root / "runs")
        self.postmortems = root / "postmortems"
        self.engine.up()

    def ids(self, kind: str) -> list[str]:
        return sorted(
            i for i, r in cloud.read(self.paths.cloud)["resources"].items() if r["kind"] == kind
        )

    def run(self, journal: Journal | None = None, **options) -> tuple:
        journal = journal or self.store.new("prod")
        sim = SimulatedClock()
        adapters = Adapters(
            engine=self.engine,
            lightsail=self.lightsail,
            host=FakeHost(),
            http=FakeHttp(),
            progress=self.progress,
            clock=Clock(now=sim.now, sleep=sim.sleep),
            wall_clock=lambda: datetime.now(UTC),
            save_instance_state=lambda path: save_instance_state(self.engine, path),
        )
        rebuild = Rebuild(
            TARGET,
            adapters,
            journal,
            Options(
                postmortem_dir=self.postmortems,
                guard_roles=STANDIN_ROLES,
                trigger="user_data drift",
                **options,
            ),
        )
        rebuild.timing = FAST
        return rebuild.run(), journal


@pytest.fixture
def world(tmp_path: Path, request) -> StandinWorld:
    cli = find_tool("pulumi")
    need(cli is not None, "the Pulumi CLI", "run 'sh tools/setup.sh' (it builds it with Go)")
    assert cli is not None
    return StandinWorld(tmp_path, cli, name=request.node.name[-30:].strip("_[]").replace("[", "-"))


def everything_written(world: StandinWorld, journal: Journal) -> str:
    parts = ["\n".join(world.progress.lines), journal.path.read_text()]
    parts += [p.read_text() for p in world.postmortems.glob("*.md")]
    return "\n".join(parts)


def test_full_cycle_replaces_the_instance_and_keeps_ip_and_dns(world):
    old_instance = world.ids("Instance")
    kept = (world.ids("StaticIp"), world.ids("DnsRecord"))
    world.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))

    outcome, journal = world.run()

    assert outcome.exit_code == exitcodes.OK, outcome.message
    assert world.ids("Instance") != old_instance, "the instance was replaced"
    assert (world.ids("StaticIp"), world.ids("DnsRecord")) == kept, "IP and DNS untouched"
    assert world.engine.instance_protected() is True
    assert world.engine.preview_expect_no_changes() is True
    log = cloud.read(world.paths.cloud)["log"]
    instance_ops = [op for op, kind, _id in log if kind == "Instance"]
    assert instance_ops[-2:] == ["delete", "create"], instance_ops
    assert journal.facts["verdict"] == "rebuild"
    saved = Path(journal.facts["instance_state"]).read_text()
    assert old_instance[0] in saved, "the pre-replacement entry was saved for a restore"
    assert SECRET not in everything_written(world, journal)
    assert SECRET not in saved


def test_no_replacement_needed_stops_without_change(world):
    before = cloud.read(world.paths.cloud)["resources"]
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert "pulumi up" in outcome.message
    assert cloud.read(world.paths.cloud)["resources"] == before
    assert world.engine.instance_protected() is True


def test_static_ip_replacement_is_forbidden_and_changes_nothing(world):
    before = cloud.read(world.paths.cloud)["resources"]
    world.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    world.stack.set_config("standin:replace_static_ip", auto.ConfigValue("true"))
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.STOPPED
    assert "StaticIp" in outcome.message
    assert cloud.read(world.paths.cloud)["resources"] == before
    assert world.lightsail.created, "the snapshot overlapped the checks"


def test_transient_ssh_failure_is_retried_on_the_real_engine(world):
    world.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    world.stack.set_config("standin:fail_ssh_times", auto.ConfigValue("1"))
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.OK, outcome.message
    assert cloud.ssh_failures(world.paths.cloud) == 1
    assert any("transient failure" in e["event"] for e in journal.events)
    assert world.engine.instance_protected() is True


def test_persistent_failure_ends_protected_through_a_targeted_up(world):
    world.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    world.stack.set_config("standin:fail_ssh_times", auto.ConfigValue("50"))
    outcome, journal = world.run()
    assert outcome.exit_code == exitcodes.FAILED, outcome.message
    assert journal.status(Phase.REPLACE) is Status.FAILED
    assert world.engine.instance_protected() is True, "targeted up wrote the protect bit"
    assert "protected (confirmed in state)" in outcome.message
    assert any("targeted" in line for line in world.progress.lines), world.progress.lines
    assert "--resume" in outcome.message
    assert SECRET not in everything_written(world, journal)


def test_crash_after_replace_then_resume_reprotects(world, monkeypatch):
    world.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    crash_after(monkeypatch, Phase.REPLACE)
    with pytest.raises(SimulatedCrash):
        world.run()
    assert world.engine.instance_protected() is False, "killed in the unprotected window"
    outcome, journal = world.run(journal=world.store.latest_resumable("prod"))
    assert outcome.exit_code == exitcodes.OK, outcome.message
    assert journal.state is RunState.SUCCEEDED
    assert world.engine.instance_protected() is True
    assert len([n for n in world.lightsail.created if "pre-rebuild" in n]) == 1


def test_resume_after_the_plan_judges_a_changed_program_again(world, monkeypatch):
    """The attack that found it: crash after the verdict, change the stack, resume."""
    world.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    crash_after(monkeypatch, Phase.PLAN)
    with pytest.raises(SimulatedCrash):
        world.run()
    before = cloud.read(world.paths.cloud)["resources"]
    world.stack.set_config("standin:replace_static_ip", auto.ConfigValue("true"))

    outcome, _ = world.run(journal=world.store.latest_resumable("prod"))

    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert "StaticIp" in outcome.message
    assert cloud.read(world.paths.cloud)["resources"] == before, "nothing destroyed"
    assert world.engine.instance_protected() is True


def test_ports_removed_during_the_replacement_stop_the_rebuild(world):
    """A resource that leaves the program while the instance is replaced is a plain delete."""
    world.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    world.stack.set_config("standin:drop_ports", auto.ConfigValue("true"))
    before = cloud.read(world.paths.cloud)["resources"]
    outcome, _ = world.run()
    assert outcome.exit_code == exitcodes.STOPPED, outcome.message
    assert "ports" in outcome.message
    assert cloud.read(world.paths.cloud)["resources"] == before
    assert world.engine.instance_protected() is True
