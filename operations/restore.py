"""Fast restore: a new instance from a Lightsail snapshot, the static IP on it, the state in line.

The runbook's "Fast-restore" as code: check everything first (the snapshot is `available`, the
instance name is free, the static IP exists, the Pulumi state can be brought in line), then create
the instance from the snapshot (zone and bundle of the stack), wait until it runs, attach the
static IP, and finally make the stack's state describe the restored instance, so that the next
`pulumi preview` does not replace it. A restore never deletes an instance: when the name is taken
it says which command would free it, and stops.

The state step (PulumiStateStep), and why it is built this way:
- Lightsail's instance id is its name, so a restored `raxx-tickets` has the id the state already
  holds. A targeted `pulumi refresh` of the instance, its public ports and its attachment reads
  the new instance's outputs (ARN, creation time, addresses). Refresh keeps the stored inputs
  unless the provider returns new ones (engine v3.274, pkg/resource/deploy/step.go RefreshStep:
  `inputs := s.old.Inputs; if refreshed.Inputs != nil {...}`); a provider that does return inputs
  derives them from the prior state for what the API does not report, and Lightsail's GetInstance
  never reports user_data. Either way user_data stays as it was, so no user_data diff appears.
- `pulumi import` is not used: an imported instance has no user_data in its state (the API does
  not return it), so the next preview would show a user_data diff, that is, a replacement.
- When a rebuild failed after delete-before-replace removed the old instance, engine v3.274 keeps
  its state entry flagged `pendingReplacement` (and its dependents), and a refresh leaves such an
  entry untouched while the next `up` replaces it. The step clears the flag on the instance and on
  the resources that depend on it, whose cloud objects the restore brought back (the attachment,
  re-attached) or which describe work the snapshot holds (the provisioning steps).
- When the state has no instance entry at all (removed by hand, an older engine), the entry is put
  back from a copy the rebuild driver saved before its replacement (`save_instance_state`, CLI
  `--state-from FILE`) with export_stack/import_stack, then refreshed as above.
- The provisioning steps carry the instance's ARN and creation time in their triggers, so the
  refreshed identity would make the next `up` re-run every step (configure, ten module installs,
  snapshots) on a host whose snapshot already holds their work. The step adopts the new identity
  into those triggers (in inputs and outputs) so provisioning is not repeated; only values equal
  to the old instance's identity are rewritten.
- The protect bit stays on: it is set on the restored entry in the state and in the stack config.
- Before anything changes, the state is imported unchanged once: the engine takes the stack's lock
  for an import (a preview on a file backend does not), so a locked stack stops the restore while
  nothing has changed yet.
- Last, a preview: the instance must not be replaced. When the program itself declares a different
  instance than the snapshot's (a rebuild's change not yet reverted), the preview says so and the
  result tells the operator; the state step cannot and must not hide a change of the program.

Rollback (the rebuild driver's `--rollback-on-failure`): the failed new instance still holds the
name, and a restore never deletes it, so the runbook restores to `<instance>-rollback` and moves
the static IP there. The program declares the instance by its name, so no state edit can make
`raxx-tickets-rollback` the stack's instance without the next preview replacing it: with
`new_instance_name` the state step is skipped on purpose and the result says what the operator
does next (delete the failed instance, then restore under the canonical name).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from operations import exitcodes, guard
from operations.errors import DeadlineExceeded, OpsError, StoppedByCheck, UsageError
from operations.ports import InstanceInfo, Lightsail, SnapshotInfo, StaticIpInfo
from operations.progress import Progress
from operations.rebuild import Target
from operations.retry import Backoff, Clock, poll
from operations.snapshot_names import (
    fast_restore_prefix,
    pre_rebuild_prefix,
    validate_snapshot_name,
)

ROLLBACK_SUFFIX = "-rollback"
SAVED_STATE_FORMAT = 1
_GONE_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})


@dataclass(frozen=True)
class Timing:
    """How long a new instance may take to run, and the pauses between looks."""

    running_deadline: float = 900
    poll_backoff: Backoff = Backoff(first=5, factor=1.5, maximum=30)


def rollback_instance_name(target: Target) -> str:
    """The runbook's name for a rollback instance: `<instance>-rollback`."""
    return f"{target.instance_name}{ROLLBACK_SUFFIX}"


def name_for_rollback(target: Target, lightsail: Lightsail) -> str | None:
    """For the rebuild driver: None when the stack's own name is free (restore under it, with the
    state step), else `<instance>-rollback` (restore beside the failed instance, state left)."""
    if lightsail.get_instance(target.instance_name) is None:
        return None
    return rollback_instance_name(target)


# ---------------------------------------------------------------- listing


@dataclass(frozen=True)
class RestorePoint:
    kind: str  # "post-install" or "pre-rebuild"
    snapshot: SnapshotInfo


def list_restore_points(lightsail: Lightsail, instance_name: str) -> list[RestorePoint]:
    """Post-install and pre-rebuild snapshots of the instance, newest first, labelled."""
    points = [
        RestorePoint("post-install", s)
        for s in lightsail.list_snapshots(fast_restore_prefix(instance_name))
    ]
    points += [
        RestorePoint("pre-rebuild", s)
        for s in lightsail.list_snapshots(pre_rebuild_prefix(instance_name))
    ]
    points.sort(key=lambda p: _timestamp(p.snapshot.created_at), reverse=True)
    return points


def render_restore_points(points: Sequence[RestorePoint], target: Target) -> str:
    """A table for the operator, with the command that restores the newest usable one."""
    if not points:
        return (
            f"no fast-restore snapshots of {target.instance_name} "
            f"({fast_restore_prefix(target.instance_name)}* or "
            f"{pre_rebuild_prefix(target.instance_name)}*)"
        )
    width = max(len(p.snapshot.name) for p in points)
    lines = [f"{'SNAPSHOT':<{width}}  {'KIND':<12}  {'STATE':<9}  CREATED (UTC)"]
    for p in points:
        lines.append(
            f"{p.snapshot.name:<{width}}  {p.kind:<12}  {p.snapshot.state:<9}  "
            f"{p.snapshot.created_at or '?'}"
        )
    usable = next((p for p in points if p.snapshot.state == "available"), None)
    if usable:
        lines += [
            "",
            "restore with: python scripts/restore.py "
            f"--stack {target.stack} --snapshot {usable.snapshot.name}",
        ]
    return "\n".join(lines)


def _timestamp(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# ---------------------------------------------------------------- the host name


def check_hostname(
    target: Target, hostname: str | None, *, allow_license_activation: bool
) -> str | None:
    """Refuse a host name other than the stack's own, unless the operator accepts the cost.

    Returns a warning line when a different host name is allowed, None when it is the stack's.
    """
    if not hostname or hostname.strip().lower().rstrip(".") == target.hostname.lower():
        return None
    cost = (
        f"each module license is bound to its domain ({target.hostname} for stack "
        f"{target.stack}); serving the restored help desk as {hostname} activates every "
        "module again on that domain, which burns one of each license's domain activations"
    )
    if not allow_license_activation:
        raise StoppedByCheck(
            f"host name {hostname} is not the stack's own ({target.hostname})",
            cause=cost,
            hint=(
                f"restore as {target.hostname} (drop --hostname), or, knowing the cost, "
                "rerun with --allow-license-activation"
            ),
        )
    return f"WARNING: {cost}"


# ---------------------------------------------------------------- the state step: interface


class Situation(StrEnum):
    IN_STATE = "the state holds the instance"
    PENDING_REPLACEMENT = (
        "the state holds the instance flagged pendingReplacement (a failed replacement deleted it)"
    )
    MISSING = "the state has no instance; it comes back from the saved copy"


@dataclass(frozen=True)
class StateCheck:
    situation: Situation
    instance_urn: str


@dataclass(frozen=True)
class StateReport:
    situation: Situation
    instance_urn: str
    refreshed: tuple[str, ...]
    cleared_pending: tuple[str, ...] = ()
    adopted_triggers: tuple[str, ...] = ()
    protected: bool = True
    instance_op: str = "same"  # the instance's operation in the closing preview
    instance_keys: tuple[str, ...] = ()
    other_changes: tuple[str, ...] = ()

    @property
    def in_line(self) -> bool:
        return self.instance_op in {"same", "update", "refresh"} and self.protected


class StateStep(Protocol):
    """Brings the stack's state in line with a restored instance (real one: PulumiStateStep)."""

    def check(self) -> StateCheck: ...  # read only; raises when the step could not work
    def probe_lock(self) -> None: ...  # raises StackLocked while another update holds the stack
    def reconcile(self) -> StateReport: ...


# ---------------------------------------------------------------- plan and result


@dataclass(frozen=True)
class RestorePlan:
    target: Target
    snapshot: SnapshotInfo
    instance_name: str
    static_ip: StaticIpInfo
    state_check: StateCheck | None
    finish_existing: bool = False
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        t = self.target
        lines = [f"restore plan for stack {t.stack}:"]
        if self.finish_existing:
            lines.append(f"  1. instance {self.instance_name} exists already: no new instance")
        else:
            lines.append(
                f"  1. create instance {self.instance_name} from snapshot "
                f"{self.snapshot.name} (created {self.snapshot.created_at or '?'}) in "
                f"{t.availability_zone}, bundle {t.bundle_id}"
            )
        lines.append(f"  2. wait until {self.instance_name} is running")
        moved = (
            f" (moving it from {self.static_ip.attached_to})"
            if self.static_ip.attached_to and self.static_ip.attached_to != self.instance_name
            else ""
        )
        lines.append(
            f"  3. attach static IP {self.static_ip.name} "
            f"({self.static_ip.ip_address}) to {self.instance_name}{moved}"
        )
        if self.state_check is None:
            lines.append(
                "  4. Pulumi state: NOT changed (a restore under another name is left "
                "to the operator)"
            )
        else:
            lines.append(
                f"  4. Pulumi state: {self.state_check.situation.value}; "
                "bring it in line (refresh, protect on), then preview"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class RestoreResult:
    target: Target
    snapshot_name: str
    instance_name: str
    static_ip_name: str
    static_ip_address: str
    state: StateReport | None
    next_steps: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def state_needs_operator(self) -> bool:
        return self.state is None or not self.state.in_line

    def render(self) -> str:
        lines = [
            f"restored {self.instance_name} from {self.snapshot_name}; static IP "
            f"{self.static_ip_name} ({self.static_ip_address}) attached to it"
        ]
        s = self.state
        if s is None:
            lines.append(
                f"Pulumi state: NOT changed; it still describes {self.target.instance_name}"
            )
        else:
            lines.append(
                f"Pulumi state: {s.situation.value}; refreshed "
                f"{', '.join(_name(u) for u in s.refreshed) or 'nothing'}; "
                f"protect bit {'on' if s.protected else 'OFF'}"
            )
            if s.cleared_pending:
                lines.append(
                    "  pendingReplacement cleared on: "
                    + ", ".join(_name(u) for u in s.cleared_pending)
                )
            if s.adopted_triggers:
                lines.append(
                    "  provisioning triggers adopted (not re-run): "
                    + ", ".join(_name(u) for u in s.adopted_triggers)
                )
            if s.instance_op in {"same", "refresh"}:
                lines.append("  preview: no change to the instance")
            elif s.instance_op == "update":
                lines.append(
                    f"  preview: in-place update of the instance ({', '.join(s.instance_keys)})"
                )
            else:
                lines.append(
                    f"  preview: the program still wants to {s.instance_op} the instance "
                    f"(keys: {', '.join(s.instance_keys) or 'unknown'})"
                )
            if s.other_changes:
                lines.append("  other pending changes: " + "; ".join(s.other_changes))
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"next: {n}" for n in self.next_steps]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "stack": self.target.stack,
            "snapshot": self.snapshot_name,
            "instance": self.instance_name,
            "static_ip": self.static_ip_name,
            "state": None
            if s is None
            else {
                "situation": s.situation.name.lower(),
                "refreshed": list(s.refreshed),
                "cleared_pending": list(s.cleared_pending),
                "adopted_triggers": list(s.adopted_triggers),
                "protected": s.protected,
                "instance_op": s.instance_op,
                "other_changes": list(s.other_changes),
            },
            "state_needs_operator": self.state_needs_operator,
            "next_steps": list(self.next_steps),
        }


_PROTECTED = "marked for protection"
_REPLACE_OPS = frozenset({"replace", "create-replacement", "delete-replaced", "discard-replaced"})


def _logical_op(ops: set[str]) -> str:
    """One operation for a resource's engine steps (a replacement shows as up to three)."""
    for logical, members in (
        ("replace", _REPLACE_OPS),
        ("delete", {"delete"}),
        ("create", {"create"}),
        ("update", {"update"}),
    ):
        if ops & members:
            return logical
    return "same"


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


# ---------------------------------------------------------------- checks


def plan_restore(
    target: Target,
    snapshot_name: str,
    *,
    lightsail: Lightsail,
    state: StateStep | None,
    new_instance_name: str | None = None,
    finish_existing: bool = False,
) -> RestorePlan:
    """Every check before acting; nothing is changed. Raises UsageError/StoppedByCheck."""
    validate_snapshot_name(snapshot_name)
    name = new_instance_name or target.instance_name
    notes: list[str] = []
    snap = lightsail.get_snapshot(snapshot_name)
    if snap is None:
        raise UsageError(
            f"snapshot {snapshot_name} does not exist (in this region)",
            hint=f"list the restore points: python scripts/restore.py --stack {target.stack}",
        )
    if snap.state != "available":
        detail = f" ({snap.progress})" if snap.progress else ""
        hint = (
            f"wait until it is available: aws lightsail get-instance-snapshot "
            f"--instance-snapshot-name {snapshot_name}; then rerun"
        )
        if snap.state == "error":
            hint = (
                "it is not a usable backup: pick another one "
                f"(python scripts/restore.py --stack {target.stack})"
            )
        raise StoppedByCheck(
            f"snapshot {snapshot_name} is in state '{snap.state}'{detail}, not 'available'",
            hint=hint,
        )
    if snap.from_instance and snap.from_instance not in {target.instance_name, name}:
        notes.append(
            f"the snapshot was taken of instance {snap.from_instance}, not "
            f"{target.instance_name}: its FreeScout keeps that instance's APP_URL"
        )
    existing = lightsail.get_instance(name)
    if finish_existing:
        if existing is None:
            raise UsageError(
                f"--finish needs instance {name}, and Lightsail has none",
                hint="rerun without --finish to create it from the snapshot",
            )
    elif existing is not None:
        raise StoppedByCheck(
            f"instance {name} already exists (state {existing.state}): a restore creates a new "
            "instance of that name and never deletes one itself",
            cause="Lightsail refuses a second instance of the same name",
            hint=(
                f"make sure nothing on it is needed, then delete it: aws lightsail "
                f"delete-instance --instance-name {name}   and rerun; or restore beside it "
                f"under another name: --instance-name {name}{ROLLBACK_SUFFIX}; or, if an "
                "earlier restore created it, finish that restore: --finish"
            ),
        )
    static_ip = lightsail.get_static_ip(target.static_ip_name)
    if static_ip is None:
        raise StoppedByCheck(
            f"static IP {target.static_ip_name} does not exist: the DNS record points at it",
            hint=(
                "check the region and credentials (aws lightsail get-static-ips); a lost static "
                "IP means a new address and a DNS change: that is not a restore"
            ),
        )
    state_check = None
    if new_instance_name is None or new_instance_name == target.instance_name:
        if state is None:
            raise UsageError("no state step given for a restore under the stack's own name")
        state_check = state.check()
    return RestorePlan(
        target=target,
        snapshot=snap,
        instance_name=name,
        static_ip=static_ip,
        state_check=state_check,
        finish_existing=finish_existing,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------- acting


def restore_from_snapshot(
    target: Target,
    snapshot_name: str,
    *,
    lightsail: Lightsail,
    state: StateStep | None,
    progress: Progress,
    clock: Clock,
    new_instance_name: str | None = None,
    finish_existing: bool = False,
    confirm: Callable[[str], bool] | None = None,
    timing: Timing = Timing(),
) -> RestoreResult:
    """Check, then create the instance from the snapshot, wait, attach the IP, align the state.

    With `new_instance_name` (a rollback beside a failed instance) the state is not touched and
    the result says what the operator does next. `confirm` sees the plan and may decline.
    """
    plan = plan_restore(
        target,
        snapshot_name,
        lightsail=lightsail,
        state=state,
        new_instance_name=new_instance_name,
        finish_existing=finish_existing,
    )
    progress.say(plan.describe())
    if confirm is not None and not confirm(f"restore {plan.instance_name} from {snapshot_name}?"):
        raise StoppedByCheck("the operator declined the restore; nothing changed")
    if plan.state_check is not None and state is not None:
        state.probe_lock()  # a locked stack stops us while nothing has changed
    return execute_restore(
        plan, lightsail=lightsail, state=state, progress=progress, clock=clock, timing=timing
    )


def execute_restore(
    plan: RestorePlan,
    *,
    lightsail: Lightsail,
    state: StateStep | None,
    progress: Progress,
    clock: Clock,
    timing: Timing = Timing(),
) -> RestoreResult:
    """Act on a checked plan (see restore_from_snapshot)."""
    t = plan.target
    name = plan.instance_name
    again = (
        f"python scripts/restore.py --stack {t.stack} --snapshot {plan.snapshot.name} "
        f"--finish" + (f" --instance-name {name}" if name != t.instance_name else "")
    )
    if not plan.finish_existing:
        progress.say(f"creating {name} from {plan.snapshot.name}")
        lightsail.create_instance_from_snapshot(
            instance_name=name,
            snapshot_name=plan.snapshot.name,
            zone=t.availability_zone,
            bundle_id=t.bundle_id,
        )
    try:
        _wait_running(lightsail, name, progress, clock, timing)
        current = lightsail.get_static_ip(t.static_ip_name)
        if current is None or current.attached_to != name:
            progress.say(f"attaching {t.static_ip_name} to {name}")
            lightsail.attach_static_ip(static_ip_name=t.static_ip_name, instance_name=name)
        ip = lightsail.get_static_ip(t.static_ip_name) or plan.static_ip
    except OpsError as error:
        raise _after_change(error)(
            f"{error.message} (instance {name} was created from {plan.snapshot.name}; the static "
            "IP may not be attached to it yet)",
            cause=error.cause,
            hint=f"{error.hint or 'look at the instance'}; then: {again}",
        ) from error
    if plan.state_check is None or state is None:
        return _rollback_result(plan, ip)
    progress.say(f"bringing the state of stack {t.stack} in line with {name}")
    try:
        report = state.reconcile()
    except OpsError as error:
        raise _after_change(error)(
            f"{name} runs from {plan.snapshot.name} with the static IP attached, but the Pulumi "
            f"state step failed: {error.message}",
            cause=error.cause,
            hint=f"{error.hint + '; then: ' if error.hint else ''}{again}",
        ) from error
    next_steps: list[str] = []
    if report.instance_op not in {"same", "refresh", "update"}:
        next_steps.append(
            "the program differs from the restored instance: revert the change that triggered "
            "the rebuild, or run it again with python scripts/rebuild.py --stack " + t.stack
        )
    if report.other_changes:
        next_steps.append(f"review and apply the other changes: pulumi preview --stack {t.stack}")
    next_steps.append(f"check the site: curl -I https://{t.hostname}/")
    return RestoreResult(
        target=t,
        snapshot_name=plan.snapshot.name,
        instance_name=name,
        static_ip_name=ip.name,
        static_ip_address=ip.ip_address,
        state=report,
        next_steps=tuple(next_steps),
        notes=plan.notes,
    )


def _after_change(error: OpsError) -> type[OpsError]:
    # Once the instance exists, "nothing changed" exit codes (usage, stopped, locked) would lie.
    return type(error) if type(error).exit_code == exitcodes.FAILED else OpsError


def _rollback_result(plan: RestorePlan, ip: StaticIpInfo) -> RestoreResult:
    t = plan.target
    return RestoreResult(
        target=t,
        snapshot_name=plan.snapshot.name,
        instance_name=plan.instance_name,
        static_ip_name=ip.name,
        static_ip_address=ip.ip_address,
        state=None,
        notes=plan.notes,
        next_steps=(
            f"the help desk now runs on {plan.instance_name}; the Pulumi state still describes "
            f"{t.instance_name}, and the next `pulumi up` would re-attach the static IP to it",
            f"investigate {t.instance_name}, then delete it: aws lightsail delete-instance "
            f"--instance-name {t.instance_name}",
            f"then restore under the stack's own name (this aligns the state): python "
            f"scripts/restore.py --stack {t.stack} --snapshot {plan.snapshot.name}",
            f"then delete {plan.instance_name}: aws lightsail delete-instance --instance-name "
            f"{plan.instance_name}",
        ),
    )


def _wait_running(
    lightsail: Lightsail, name: str, progress: Progress, clock: Clock, timing: Timing
) -> InstanceInfo:
    last: list[str] = []

    def probe() -> InstanceInfo | None:
        info = lightsail.get_instance(name)
        if info is None:
            last[:] = ["not visible yet"]
            return None  # a new instance can be invisible for a moment
        last[:] = [info.state]
        if info.state == "running":
            return info
        if info.state in _GONE_STATES:
            raise OpsError(
                f"instance {name} went to state '{info.state}' instead of running",
                hint=f"aws lightsail get-instance --instance-name {name}",
            )
        return None

    def on_wait(elapsed: float, pause: float) -> None:
        progress.waiting(f"{name} to run", elapsed, last[0] if last else "")

    try:
        info = poll(
            probe,
            what=f"instance {name} to run",
            deadline_seconds=timing.running_deadline,
            backoff=timing.poll_backoff,
            clock=clock,
            on_wait=on_wait,
        )
    except DeadlineExceeded as error:
        raise DeadlineExceeded(
            f"instance {name} was not running within {timing.running_deadline:.0f}s "
            f"(last seen: {last[0] if last else 'never'})",
            hint=f"aws lightsail get-instance --instance-name {name}",
        ) from error
    progress.say(f"{name} is running")
    return info


# ---------------------------------------------------------------- the saved copy


def save_instance_state(
    engine_or_stack: Any, path: str | os.PathLike[str], *, instance: str | None = None
) -> Path:
    """Save the instance's state entry (and its provider's identity) to `path`, mode 0600.

    The rebuild driver calls this before its replacement, e.g. into the run's journal folder;
    `scripts/restore.py --state-from FILE` puts the entry back when a failed rebuild left the state
    without the instance. `engine_or_stack` is an AutomationEngine (its instance is used) or an
    `auto.Stack` with `instance` (the instance's resource name or URN). No secret is in clear:
    secret values in the state are stored encrypted, as the state itself stores them.
    """
    stack = getattr(engine_or_stack, "stack", engine_or_stack)
    wanted = instance or getattr(engine_or_stack, "instance", None)
    if not wanted:
        raise UsageError("save_instance_state needs the instance's resource name or URN")
    resources = list((stack.export_stack().deployment or {}).get("resources") or [])
    entry = _find_instance(resources, wanted)
    if entry is None:
        raise OpsError(f"the state of stack {stack.name} has no resource {wanted!r} to save")
    provider_ref = str(entry.get("provider") or "")
    provider = next((r for r in resources if _provider_ref(r) == provider_ref), None)
    document = {
        "format": SAVED_STATE_FORMAT,
        "stack": stack.name,
        "saved_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resource": entry,
        # Only the provider's identity: its inputs hold the provider configuration (tokens),
        # which has no place in a run's journal folder. A restore needs the provider to be in
        # the state anyway (it refuses otherwise).
        "provider": {k: provider[k] for k in ("urn", "id", "type") if k in provider}
        if provider
        else None,
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".instance-state.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_saved_entry(path: str | os.PathLike[str], stack_name: str) -> dict[str, Any]:
    """The saved instance entry from `save_instance_state`, checked; UsageError when unusable."""
    source = Path(path)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise UsageError(f"--state-from: no file {source}") from error
    except (OSError, ValueError) as error:
        raise UsageError(
            f"--state-from: {source} is not a saved instance state: {error}"
        ) from error
    entry = document.get("resource") if isinstance(document, dict) else None
    if (
        not isinstance(entry, dict)
        or document.get("format") != SAVED_STATE_FORMAT
        or not str(entry.get("urn", "")).startswith("urn:pulumi:")
    ):
        raise UsageError(
            f"--state-from: {source} is not a saved instance state (format "
            f"{SAVED_STATE_FORMAT} with a resource entry)"
        )
    if document.get("stack") != stack_name:
        raise UsageError(
            f"--state-from: {source} was saved from stack {document.get('stack')!r},"
            f" not {stack_name!r}"
        )
    return dict(document)


def _provider_ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('urn')}::{resource.get('id')}"


def _find_instance(resources: Sequence[Mapping[str, Any]], wanted: str) -> dict[str, Any] | None:
    def matches(urn: str) -> bool:
        return (
            urn == wanted if wanted.startswith("urn:pulumi:") else urn.rsplit("::", 1)[-1] == wanted
        )

    found = [dict(r) for r in resources if matches(str(r.get("urn", ""))) and not r.get("delete")]
    if len(found) > 1:
        raise OpsError(
            f"{len(found)} state entries match {wanted!r}", hint="pass the instance's full URN"
        )
    return found[0] if found else None


# ---------------------------------------------------------------- the state step over the engine


class PulumiStateStep:
    """StateStep over an operations.engine.AutomationEngine (an `auto.Stack` inside).

    `saved` is a document from load_saved_entry (needed only when the state has no instance).
    `roles` tells which types are the instance's ports and attachment (refreshed with it) and which
    are provisioning (their triggers are adopted); tests pass the stand-in's types.
    """

    def __init__(
        self,
        engine: Any,
        *,
        saved: Mapping[str, Any] | None = None,
        roles: Mapping[str, guard.Role] = guard.KNOWN_TYPES,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.stack = engine.stack
        self.saved = saved
        self.roles = roles
        self._say = on_progress or (lambda _line: None)

    # ------------------------------------------------------------ reading

    def _deployment(self) -> tuple[int, dict[str, Any]]:
        exported = self.stack.export_stack()
        return int(exported.version or 3), copy.deepcopy(dict(exported.deployment or {}))

    def check(self) -> StateCheck:
        """Where the instance stands in the state; UsageError when it is missing and no copy."""
        _, deployment = self._deployment()
        resources = deployment.get("resources") or []
        entry = _find_instance(resources, self.engine.instance)
        if entry is not None:
            situation = (
                Situation.PENDING_REPLACEMENT
                if entry.get("pendingReplacement")
                else Situation.IN_STATE
            )
            return StateCheck(situation, str(entry["urn"]))
        if self.saved is None:
            raise UsageError(
                f"the state of stack {self.stack.name} has no instance {self.engine.instance!r}, "
                "and no saved copy of its entry was given",
                cause="`pulumi import` would leave user_data out of the state (Lightsail does not "
                "return it) and the next preview would replace the restored instance",
                hint="pass the copy the rebuild saved: "
                "--state-from .runs/<run-id>/instance-state.json",
            )
        saved_entry = self.saved["resource"]
        if _find_instance([saved_entry], self.engine.instance) is None:
            raise UsageError(
                f"the saved copy holds {saved_entry.get('urn')}, not the instance "
                f"{self.engine.instance!r}"
            )
        self._insert_position(resources, saved_entry)  # raises when it cannot go back
        return StateCheck(Situation.MISSING, str(saved_entry["urn"]))

    def probe_lock(self) -> None:
        """Import the state unchanged: the engine takes the stack's lock for it."""
        version, deployment = self._deployment()
        self._import(version, deployment, "probing the stack's lock")

    # ------------------------------------------------------------ acting

    def reconcile(self) -> StateReport:
        """Put the instance entry back (if missing), clear pendingReplacement, protect on,
        refresh the instance with its ports and attachment, adopt its identity, preview."""
        check = self.check()
        version, deployment = self._deployment()
        resources: list[dict[str, Any]] = deployment.setdefault("resources", [])
        if check.situation is Situation.MISSING:
            assert self.saved is not None
            self._put_back(deployment, dict(self.saved["resource"]))
        urn = check.instance_urn
        entry = next(r for r in resources if r.get("urn") == urn and not r.get("delete"))
        old_identity = dict(entry.get("outputs") or {})
        instance_id = entry.get("id")
        cleared = []
        for resource in [entry, *self._dependents(resources, urn)]:
            if resource.get("pendingReplacement"):
                resource["pendingReplacement"] = False
                cleared.append(str(resource["urn"]))
        entry["protect"] = True
        self._import(version, deployment, "restoring the instance's state entry")
        self.engine.set_protect(True)

        refresh = [urn] + [
            str(r["urn"])
            for r in resources
            if self._role(r) in {guard.Role.PORTS, guard.Role.ATTACHMENT} and not r.get("delete")
        ]
        self._refresh(refresh)

        version, deployment = self._deployment()
        resources = deployment.get("resources") or []
        entry = _find_instance(resources, urn) or {}
        if not entry:
            raise OpsError(
                f"after the refresh the state of stack {self.stack.name} has no {_name(urn)}: "
                "the provider could not find the restored instance",
                hint=f"aws lightsail get-instance --instance-name {instance_id}",
            )
        adopted = self._adopt_identity(resources, old_identity, dict(entry.get("outputs") or {}))
        if adopted:
            self._import(version, deployment, "adopting the instance's identity in provisioning")
        protected = bool(self.engine.instance_protected())
        return self._judge_preview(
            check.situation, urn, tuple(refresh), tuple(cleared), tuple(adopted), protected
        )

    def _judge_preview(
        self,
        situation: Situation,
        urn: str,
        refreshed: tuple[str, ...],
        cleared: tuple[str, ...],
        adopted: tuple[str, ...],
        protected: bool,
    ) -> StateReport:
        result = self.engine.preview()
        if result.error and not (_name(urn) in result.error and _PROTECTED in result.error):
            raise OpsError(
                f"the preview after the state step failed: {result.error}",
                hint=f"pulumi preview --stack {self.stack.name}",
            )
        ops: dict[str, set[str]] = {}
        keys: tuple[str, ...] = ()
        for step in result.steps:
            ops.setdefault(step.urn, set()).add(step.op)
            if step.urn == urn and step.op != "same":
                keys = tuple(dict.fromkeys(keys + (step.keys or step.diffs)))
        instance_op = _logical_op(ops.get(urn, set()))
        if result.error and instance_op == "same":
            instance_op = "replace"  # the protection error names the instance
        others = [
            f"{_logical_op(found)} {_name(other)}"
            for other, found in ops.items()
            if other != urn
            and _logical_op(found) != "same"
            and self._role_of_urn(other) not in {guard.Role.PULUMI_INTERNAL, guard.Role.COMPONENT}
        ]
        return StateReport(
            situation=situation,
            instance_urn=urn,
            refreshed=refreshed,
            cleared_pending=cleared,
            adopted_triggers=adopted,
            protected=protected,
            instance_op=instance_op,
            instance_keys=tuple(keys),
            other_changes=tuple(others),
        )

    # ------------------------------------------------------------ helpers

    def _role(self, resource: Mapping[str, Any]) -> guard.Role | None:
        return guard.role_of(str(resource.get("type", "")), self.roles)

    def _role_of_urn(self, urn: str) -> guard.Role | None:
        return guard.role_of(guard.type_token_of(urn), self.roles)

    @staticmethod
    def _references(resource: Mapping[str, Any]) -> set[str]:
        refs = set(resource.get("dependencies") or [])
        for deps in (resource.get("propertyDependencies") or {}).values():
            refs.update(deps or [])
        for key in ("parent", "deletedWith"):
            if resource.get(key):
                refs.add(str(resource[key]))
        return refs

    def _dependents(self, resources: Sequence[dict[str, Any]], urn: str) -> list[dict[str, Any]]:
        """Resources that depend on `urn`, directly or through each other (state order)."""
        reached = {urn}
        found = []
        for resource in resources:  # the state is in dependency order
            if self._references(resource) & reached and resource.get("urn") not in reached:
                reached.add(str(resource["urn"]))
                found.append(resource)
        return found

    def _insert_position(
        self, resources: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]
    ) -> int:
        urns = {str(r.get("urn")): i for i, r in enumerate(resources)}
        providers = {_provider_ref(r) for r in resources}
        provider = str(entry.get("provider") or "")
        if provider and provider not in providers:
            raise UsageError(
                f"the saved instance entry uses provider {provider}, which the state no longer has",
                hint="put the entry back by hand (pulumi stack export, edit, pulumi stack import), "
                "with the provider reference of the current state",
            )
        needed = [r for r in self._references(entry)]
        missing = [r for r in needed if r not in urns]
        if missing:
            raise UsageError(
                f"the saved instance entry refers to resources the state no longer "
                f"has: {', '.join(missing)}"
            )
        after = max(
            [urns[r] for r in needed]
            + [i for i, r in enumerate(resources) if _provider_ref(r) == provider]
            + [-1]
        )
        urn = str(entry.get("urn"))
        early = [str(r.get("urn")) for r in resources[: after + 1] if urn in self._references(r)]
        if early:
            raise UsageError(
                f"cannot put the instance back: {', '.join(early)} depend on it but "
                "come before what it depends on in the state"
            )
        return after + 1

    def _put_back(self, deployment: dict[str, Any], entry: dict[str, Any]) -> None:
        resources = deployment["resources"]
        entry.pop("pendingReplacement", None)
        entry.pop("delete", None)
        resources.insert(self._insert_position(resources, entry), entry)
        # A create that never finished would make the engine ask about it: the instance exists now.
        pending = deployment.get("pending_operations") or []
        deployment["pending_operations"] = [
            p for p in pending if (p.get("resource") or {}).get("urn") != entry.get("urn")
        ]
        self._say(f"state: putting {_name(str(entry['urn']))} back from the saved copy")

    def _adopt_identity(
        self, resources: Sequence[dict[str, Any]], old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> list[str]:
        """Rewrite, in provisioning triggers, the old instance's identity values to the new ones."""
        mapping = {
            str(v): new[k]
            for k, v in old.items()
            if isinstance(v, str)
            and v
            and isinstance(new.get(k), str)
            and new[k] != v
            and not k.startswith("__")
        }
        adopted: list[str] = []
        if not mapping:
            return adopted
        for resource in resources:
            if self._role(resource) is not guard.Role.PROVISIONING:
                continue
            changed = False
            for part in ("inputs", "outputs"):
                props = resource.get(part) or {}
                triggers = props.get("triggers")
                if isinstance(triggers, list):
                    rewritten = [mapping.get(t, t) if isinstance(t, str) else t for t in triggers]
                    if rewritten != triggers:
                        props["triggers"] = rewritten
                        changed = True
            if changed:
                adopted.append(str(resource["urn"]))
        return adopted

    def _import(self, version: int, deployment: dict[str, Any], what: str) -> None:
        from pulumi import automation as auto

        from operations.engine import _Run

        run = _Run(self._say, report_steps=False)
        try:
            self.stack.import_stack(auto.Deployment(version=version, deployment=deployment))
        except auto.errors.CommandError as error:
            run.failed(error)
            raise self.engine._failure(f"import ({what})", run) from error

    def _refresh(self, targets: list[str]) -> None:
        # AutomationEngine has no refresh yet: this reuses its event handling and error typing
        # (StackLocked, OpsError with the engine's output). The lead may move it there.
        from pulumi import automation as auto

        from operations.engine import _Run

        run = _Run(self._say, report_steps=True)
        self._say(f"engine: refresh of {', '.join(_name(t) for t in targets)}")
        try:
            self.stack.refresh(target=targets, on_event=run.on_event, on_output=run.on_output)
        except auto.errors.CommandError as error:
            run.failed(error)
            raise self.engine._failure("refresh", run) from error


def saved_state_path(run_dir: str | os.PathLike[str]) -> Path:
    """Where the rebuild driver saves the instance's entry in a run's journal folder."""
    return Path(run_dir) / "instance-state.json"


__all__ = [
    "PulumiStateStep",
    "RestorePlan",
    "RestorePoint",
    "RestoreResult",
    "Situation",
    "StateCheck",
    "StateReport",
    "StateStep",
    "Timing",
    "check_hostname",
    "execute_restore",
    "list_restore_points",
    "load_saved_entry",
    "name_for_rollback",
    "plan_restore",
    "render_restore_points",
    "restore_from_snapshot",
    "rollback_instance_name",
    "save_instance_state",
    "saved_state_path",
]
