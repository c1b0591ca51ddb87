"""In-memory stand-ins for the rebuild driver's adapters.

They model only what the driver's logic reads: the protect bit in config and in state, whether
the instance still needs replacing, snapshot states, host check results. What they do NOT prove:
that the real engine behaves this way (tests/test_rebuild_engine.py runs the driver against the
real engine), that Lightsail accepts these calls (tests/test_lightsail.py, botocore's Stubber),
or that SSH/MariaDB/HTTP answer like this (the adapter tests against real local servers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from operations.errors import OpsError, TransientError
from operations.guard import Step
from operations.host_checks import DataCheck, DataState
from operations.ports import InstanceInfo, PreviewResult, SnapshotInfo, StaticIpInfo, UpResult

PROJECT = "urn:pulumi:prod::freescout::"
INSTANCE_URN = PROJECT + "raxx:freescout:Host$aws:lightsail/instance:Instance::raxx-tickets"
PORTS_URN = (
    PROJECT + "raxx:freescout:Host$aws:lightsail/instancePublicPorts:"
    "InstancePublicPorts::raxx-tickets-ports"
)
ATTACH_URN = (
    PROJECT + "raxx:freescout:Host$aws:lightsail/staticIpAttachment:"
    "StaticIpAttachment::raxx-tickets-ip-attachment"
)
STATIC_IP_URN = PROJECT + "raxx:freescout:Host$aws:lightsail/staticIp:StaticIp::raxx-tickets-ip"
DNS_URN = PROJECT + "raxx:freescout:Dns$cloudflare:index/dnsRecord:DnsRecord::tickets"
COMMAND_URN = PROJECT + "raxx:freescout:Provisioning$command:remote:Command::configure"

PROTECTION_ERROR = (
    f'unable to replace resource "{INSTANCE_URN}"\n'
    "as it is currently marked for protection. To unprotect the resource, remove the `protect` "
    "flag from the resource in your Pulumi program and run `pulumi up`"
)


@dataclass
class FakeEngine:
    """The stack as the driver sees it: config protect, state protect, a pending replacement."""

    needs_replace: bool = True
    config_protect: bool = True
    state_protect: bool = True
    generation: int = 1
    forbidden_change: bool = False
    transient_failures: int = 0
    fail_up: str | None = None  # message of a permanent failure of every `up`
    fail_full_up_only: bool = False  # a full `up` fails, a targeted one works
    provisioning_pending: bool = False  # replaced, but provisioning did not finish
    calls: list[str] = field(default_factory=list)

    def set_protect(self, protect: bool) -> None:
        self.calls.append(f"set_protect({protect})")
        self.config_protect = protect

    def preview(self) -> PreviewResult:
        self.calls.append("preview")
        steps = [Step(STATIC_IP_URN, "same"), Step(DNS_URN, "same")]
        if self.forbidden_change:
            steps[0] = Step(STATIC_IP_URN, "replace")
        if self.needs_replace:
            if self.state_protect and self.config_protect:
                return PreviewResult(steps=steps, error=PROTECTION_ERROR)
            steps += [
                Step(INSTANCE_URN, "replace"),
                Step(PORTS_URN, "replace"),
                Step(ATTACH_URN, "replace"),
                Step(COMMAND_URN, "replace"),
            ]
            return PreviewResult(steps=steps, change_summary={"replace": 4, "same": 2})
        command_op = "create" if self.provisioning_pending else "same"
        steps += [Step(INSTANCE_URN, "same"), Step(COMMAND_URN, command_op)]
        return PreviewResult(steps=steps, change_summary={"same": 4})

    def up(self, *, targets: Sequence[str] | None = None) -> UpResult:
        self.calls.append(f"up({list(targets) if targets else ''})")
        if self.fail_up:
            if not (self.fail_full_up_only and targets):
                raise OpsError(self.fail_up)
        # A targeted `up` touches the instance alone: the failing provisioning step is not run.
        if not targets and self.transient_failures > 0 and (
            self.needs_replace or self.provisioning_pending
        ):
            self.transient_failures -= 1
            if self.needs_replace:
                if self.config_protect and self.state_protect:
                    raise OpsError(PROTECTION_ERROR)
                # The instance is replaced; its provisioning then fails on SSH.
                self.generation += 1
                self.needs_replace = False
                self.provisioning_pending = True
            self.state_protect = self.config_protect
            raise TransientError("ssh: handshake failed: read: connection reset by peer")
        self.provisioning_pending = False
        summary = {"same": 4}
        if self.needs_replace:
            if self.config_protect and self.state_protect:
                raise OpsError(PROTECTION_ERROR)
            self.generation += 1
            self.needs_replace = False
            summary = {"replace": 4, "same": 2}
        self.state_protect = self.config_protect
        return UpResult(change_summary=summary)

    def instance_protected(self) -> bool:
        self.calls.append("instance_protected")
        return self.state_protect

    def instance_urn(self) -> str:
        return INSTANCE_URN

    def outputs(self) -> dict[str, object]:
        return {"instance_name": "raxx-tickets"}

    @property
    def ups(self) -> int:
        return sum(1 for c in self.calls if c.startswith("up("))


@dataclass
class FakeLightsail:
    """Snapshots that become available (or error) on the first wait; one instance, one IP."""

    instance_exists: bool = True
    snapshot_error: bool = False
    # The instance's creation time; tests tie it to the fake engine's generation.
    created_at: Callable[[], str] = lambda: "generation-1"
    snapshots: dict[str, SnapshotInfo] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def get_instance(self, name: str) -> InstanceInfo | None:
        if not self.instance_exists:
            return None
        return InstanceInfo(
            name=name,
            state="running",
            public_ip="203.0.113.10",
            username="admin",
            created_at=self.created_at(),
        )

    def get_static_ip(self, name: str) -> StaticIpInfo | None:
        return StaticIpInfo(name=name, ip_address="203.0.113.10", attached_to="raxx-tickets")

    def create_instance_snapshot(self, instance_name: str, snapshot_name: str) -> None:
        self.created.append(snapshot_name)
        self.snapshots[snapshot_name] = SnapshotInfo(snapshot_name, "pending", "0%")

    def get_snapshot(self, snapshot_name: str) -> SnapshotInfo | None:
        return self.snapshots.get(snapshot_name)

    def wait_snapshot_available(self, snapshot_name, *, deadline_seconds, on_progress=None):
        info = self.snapshots[snapshot_name]
        if on_progress:
            on_progress(info, 0.0)
        if self.snapshot_error:
            self.snapshots[snapshot_name] = SnapshotInfo(snapshot_name, "error")
            raise OpsError(f"snapshot {snapshot_name} ended in state error")
        self.snapshots[snapshot_name] = SnapshotInfo(snapshot_name, "available", "100%")
        return self.snapshots[snapshot_name]

    def host_keys(self, instance_name: str):
        return []

    def list_snapshots(self, prefix: str):
        return [s for n, s in sorted(self.snapshots.items(), reverse=True) if n.startswith(prefix)]

    def create_instance_from_snapshot(self, **kwargs) -> None:
        raise AssertionError("not used by the rebuild cycle")

    def attach_static_ip(self, **kwargs) -> None:
        raise AssertionError("not used by the rebuild cycle")


@dataclass
class FakeHost:
    data: DataCheck = field(default_factory=lambda: DataCheck(DataState.EMPTY, 0, 1))
    cloud_init_error: str | None = None
    modules_ok: bool = True
    calls: list[str] = field(default_factory=list)

    def trust_instance(self, instance_name: str) -> None:
        self.calls.append("trust_instance")

    def wait_reachable(self) -> None:
        self.calls.append("wait_reachable")

    def data_check(self) -> DataCheck:
        self.calls.append("data_check")
        return self.data

    def wait_cloud_init_done(self) -> str:
        if self.cloud_init_error:
            raise OpsError(
                "cloud-init finished with an error on the new instance", cause=self.cloud_init_error
            )
        return "cloud-init done"

    def require_modules_active(self, aliases) -> str:
        if not self.modules_ok:
            raise OpsError(
                "not every configured FreeScout module is active",
                cause="not active: workflows (Disabled)",
            )
        return f"{len(aliases)} active"


@dataclass
class FakeHttp:
    statuses: list[int] = field(default_factory=lambda: [302])

    def status(self, url: str) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]



class SimulatedCrash(BaseException):
    """Stands for the process being killed: nothing in the driver catches it."""


def crash_after(monkeypatch, phase) -> None:
    """Make the journal 'kill' the run once, right after `phase` is recorded as done."""
    from operations.journal import Journal

    original_finish = Journal.finish
    armed = {"on": True}

    def finish(self, done, **detail):
        original_finish(self, done, **detail)
        if armed["on"] and done is phase:
            armed["on"] = False
            raise SimulatedCrash(done.value)

    monkeypatch.setattr(Journal, "finish", finish)
