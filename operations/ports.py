"""The adapters the rebuild driver talks through, as typed interfaces.

The driver (operations/rebuild.py) receives one object per edge: the engine, Lightsail, a remote
shell on the instance, an HTTP probe and a clock. Production wires the real adapters; tests hand
in local real servers or fakes that say what they do not prove.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from operations.guard import Step

# ---------------------------------------------------------------- Lightsail


@dataclass(frozen=True)
class InstanceInfo:
    name: str
    state: str  # Lightsail's state name: pending, running, stopped, ...
    public_ip: str | None
    username: str  # the SSH user Lightsail reports (Debian images: admin)
    created_at: str | None = None


@dataclass(frozen=True)
class StaticIpInfo:
    name: str
    ip_address: str
    attached_to: str | None


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    state: str  # pending | available | error
    progress: str | None = None
    created_at: str | None = None  # ISO 8601
    from_instance: str | None = None


@dataclass(frozen=True)
class HostKey:
    """One SSH host key as GetInstanceAccessDetails reports it ("ssh-ed25519", base64 key)."""

    algorithm: str
    public_key: str


class Lightsail(Protocol):
    def get_instance(self, name: str) -> InstanceInfo | None: ...
    def get_static_ip(self, name: str) -> StaticIpInfo | None: ...
    def create_instance_snapshot(self, instance_name: str, snapshot_name: str) -> None: ...
    def get_snapshot(self, snapshot_name: str) -> SnapshotInfo | None: ...
    def wait_snapshot_available(
        self,
        snapshot_name: str,
        *,
        deadline_seconds: float,
        on_progress: Callable[[SnapshotInfo, float], None] | None = None,
    ) -> SnapshotInfo: ...
    def host_keys(self, instance_name: str) -> list[HostKey]: ...
    def list_snapshots(self, prefix: str) -> list[SnapshotInfo]: ...  # newest first
    def create_instance_from_snapshot(
        self, *, instance_name: str, snapshot_name: str, zone: str, bundle_id: str
    ) -> None: ...
    def attach_static_ip(self, *, static_ip_name: str, instance_name: str) -> None: ...


# ---------------------------------------------------------------- the host


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


class RemoteShell(Protocol):
    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 120
    ) -> CommandResult: ...


class HttpProbe(Protocol):
    def status(self, url: str) -> int: ...  # the status code, redirects not followed


# ---------------------------------------------------------------- the engine


@dataclass(frozen=True)
class PreviewResult:
    """A preview's steps (operations.guard.Step) and, when it failed, the engine's error text."""

    steps: Sequence[Step]
    error: str | None = None
    change_summary: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UpResult:
    change_summary: dict[str, int]


class Engine(Protocol):
    def set_protect(self, protect: bool) -> None: ...  # stack config `freescout:protect`
    def preview(self) -> PreviewResult: ...
    def up(self, *, targets: Sequence[str] | None = None) -> UpResult: ...
    def instance_protected(self) -> bool: ...  # the protect bit of the instance in exported state
    def instance_urn(self) -> str | None: ...  # None when the state holds no instance
    def outputs(self) -> dict[str, object]: ...
