"""Benchmark: the rebuild driver's wall time against the cycle's critical path.

Every adapter only waits (time.sleep) for a fixed share of a real rebuild's timeline, scaled down,
so what is measured is the driver's own scheduling and bookkeeping: whether it overlaps the
snapshot with the checks and the preview, and what its journal writes and progress cost.

    critical path = max(snapshot, checks + preview) + replace + re-protect + verify + post-install

Run:  .venv/bin/python -m tools.bench_rebuild [--scale 1.0] [--runs 3]
Prints each run's wall time, the critical path and their ratio (target: at most 1.05).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from operations.guard import Step
from operations.host_checks import DataCheck, DataState
from operations.journal import JournalStore
from operations.ports import InstanceInfo, PreviewResult, SnapshotInfo, StaticIpInfo, UpResult
from operations.progress import SilentProgress
from operations.rebuild import Adapters, Options, Rebuild, Target
from tests.rebuild_fakes import ATTACH_URN, COMMAND_URN, DNS_URN, INSTANCE_URN, STATIC_IP_URN


@dataclass(frozen=True)
class Durations:
    """Seconds each step waits, in the proportions of a real rebuild (scaled by --scale)."""

    lookup: float = 0.05  # GetInstance / GetStaticIp
    host_keys: float = 0.05
    reachable: float = 0.10
    data_check: float = 0.30
    preview: float = 0.60
    snapshot: float = 1.50  # longer than checks + preview: the checks hide behind it
    replace_up: float = 1.20
    reprotect_up: float = 0.30
    cloud_init: float = 0.40
    site: float = 0.05
    modules: float = 0.10
    post_snapshot: float = 0.80

    def scaled(self, factor: float) -> Durations:
        return Durations(**{k: v * factor for k, v in self.__dict__.items()})

    def critical_path(self) -> float:
        checks = self.lookup * 2 + self.host_keys + self.reachable + self.data_check
        first = max(self.lookup * 2 + self.snapshot, checks + self.preview)
        reprotect = self.reprotect_up + self.preview
        verify = self.host_keys + self.reachable + self.cloud_init + self.site + self.modules
        return first + self.replace_up + reprotect + verify + self.post_snapshot


class WaitingEngine:
    def __init__(self, d: Durations):
        self.d = d
        self.replaced = False
        self.config_protect = True
        self.state_protect = True

    def set_protect(self, protect: bool) -> None:
        self.config_protect = protect

    def preview(self) -> PreviewResult:
        time.sleep(self.d.preview)
        if self.replaced:
            return PreviewResult(steps=[Step(INSTANCE_URN, "same")])
        return PreviewResult(
            steps=[Step(INSTANCE_URN, "replace"), Step(ATTACH_URN, "replace"),
                   Step(COMMAND_URN, "replace"), Step(STATIC_IP_URN, "same"),
                   Step(DNS_URN, "same")],
            change_summary={"replace": 3, "same": 2},
        )

    def up(self, *, targets=None) -> UpResult:
        time.sleep(self.d.reprotect_up if self.replaced else self.d.replace_up)
        self.replaced = True
        self.state_protect = self.config_protect
        return UpResult(change_summary={"replace": 3})

    def instance_protected(self) -> bool:
        return self.state_protect

    def instance_urn(self) -> str:
        return INSTANCE_URN

    def outputs(self) -> dict[str, object]:
        return {}


class WaitingLightsail:
    def __init__(self, d: Durations):
        self.d = d
        self.snapshots: dict[str, SnapshotInfo] = {}

    def get_instance(self, name):
        time.sleep(self.d.lookup)
        return InstanceInfo(name, "running", "203.0.113.10", "admin")

    def get_static_ip(self, name):
        time.sleep(self.d.lookup)
        return StaticIpInfo(name, "203.0.113.10", "raxx-tickets")

    def create_instance_snapshot(self, instance_name, snapshot_name):
        self.snapshots[snapshot_name] = SnapshotInfo(snapshot_name, "pending")

    def get_snapshot(self, name):
        return self.snapshots.get(name)

    def wait_snapshot_available(self, name, *, deadline_seconds, on_progress=None):
        pre = "pre-rebuild" in name
        time.sleep(self.d.snapshot if pre else self.d.post_snapshot)
        return SnapshotInfo(name, "available")


class WaitingHost:
    def __init__(self, d: Durations):
        self.d = d

    def trust_instance(self, name):
        time.sleep(self.d.host_keys)

    def wait_reachable(self):
        time.sleep(self.d.reachable)

    def data_check(self):
        time.sleep(self.d.data_check)
        return DataCheck(DataState.EMPTY, 0, 1)

    def wait_cloud_init_done(self):
        time.sleep(self.d.cloud_init)
        return "done"

    def require_modules_active(self, aliases):
        time.sleep(self.d.modules)
        return "all active"


class WaitingHttp:
    def __init__(self, d: Durations):
        self.d = d

    def status(self, url):
        time.sleep(self.d.site)
        return 302


def run_once(d: Durations, workdir: Path) -> float:
    target = Target("prod", "raxx-tickets", "raxx-tickets-ip", "tickets.raxx.app", ("tags",))
    adapters = Adapters(
        engine=WaitingEngine(d), lightsail=WaitingLightsail(d), host=WaitingHost(d),
        http=WaitingHttp(d), progress=SilentProgress(),
    )
    journal = JournalStore(workdir / "runs").new("prod")
    rebuild = Rebuild(target, adapters, journal, Options(postmortem_dir=workdir / "pm"))
    start = time.perf_counter()
    outcome = rebuild.run()
    wall = time.perf_counter() - start
    if outcome.exit_code != 0:
        raise SystemExit(f"benchmark run failed: {outcome.message}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every wait")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    d = Durations().scaled(args.scale)
    critical = d.critical_path()
    walls = []
    for index in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            wall = run_once(d, Path(tmp))
        walls.append(wall)
        print(f"run {index + 1}: wall {wall:.3f}s  critical path {critical:.3f}s  "
              f"ratio {wall / critical:.3f}")
    median = statistics.median(walls)
    serial = critical + min(d.lookup * 2 + d.snapshot, d.lookup * 2 + d.host_keys + d.reachable
                            + d.data_check + d.preview) - d.lookup * 2
    print(f"median wall {median:.3f}s; critical path {critical:.3f}s; "
          f"ratio {median / critical:.3f} (target <= 1.05; fully serial would be "
          f"{serial / critical:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
