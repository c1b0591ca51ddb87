"""The engine adapter: a Pulumi stack driven through the Automation API (ports.Engine).

Production selects the project's stack (`for_project`); the engine tests hand in an inline-program
stack of the stand-in project. The adapter turns the engine's failures into typed errors: another
update holding the lock is StackLocked, a transient SSH failure of provisioning is TransientError
(the driver retries it), anything else is OpsError with the tail of the engine's output. A preview
that fails on the protection error is not an exception: the guard judges it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from operations import guard
from operations.errors import OpsError, StackLocked, TransientError, UsageError
from operations.ports import PreviewResult, UpResult

PROTECT_KEY = "freescout:protect"

# The diy (file/S3) backend's lock message (pkg/backend/diy/lock.go) and the Pulumi Cloud's.
_LOCKED = re.compile(
    r"the stack is currently locked by \d+ lock\(s\)|\[409\] Conflict: Another update is currently"
)
# What OpenSSH-based provisioning prints while sshd restarts during cloud-init, or before it
# listens at all. Matched only in the errors of resources, never in the CLI's own failures.
_TRANSIENT_SSH = re.compile(
    r"handshake failed|connection refused|connection reset by peer|i/o timeout", re.I
)
_NO_CHANGES_EXPECTED = "no changes were expected"
_PROTECTED = "marked for protection"
# The engine's closing line after the real errors; it says nothing of its own.
_GENERIC_ERRORS = {"preview failed", "update failed"}
_TAIL_LINES = 25

Progress = Callable[[str], None]


def for_project(
    project_root: str | Path, *, stack_name: str, instance: str, on_progress: Progress | None = None
) -> AutomationEngine:
    """The adapter for the project's own stack (needs the Pulumi CLI and the Python host).

    A missing CLI, a missing backend login or an unknown stack is a UsageError naming the fix,
    raised before anything else is looked at.
    """
    try:
        stack = auto.select_stack(stack_name=stack_name, work_dir=str(project_root))
    except FileNotFoundError as error:
        raise UsageError(
            "no `pulumi` CLI on PATH",
            hint="install Pulumi (https://www.pulumi.com/docs/install/); the CLI that "
            "tools/setup.sh builds for the tests has no Python language host",
        ) from error
    except auto.errors.CommandError as error:
        raise UsageError(
            f"cannot select stack {stack_name!r}",
            cause=_first_line_matching(str(error), _SELECT_PROBLEM) or _tail(str(error), 3),
            hint="log in to the state backend (`pulumi login <backend>`; for a passphrase "
            "secrets provider export PULUMI_CONFIG_PASSPHRASE), then check `pulumi stack ls`",
        ) from error
    return AutomationEngine(stack, instance=instance, on_progress=on_progress)


_SELECT_PROBLEM = re.compile(r"error: .*|PULUMI_ACCESS_TOKEN.*|no stack named.*", re.I)


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class AutomationEngine:
    """ports.Engine over an `auto.Stack`.

    `instance` is the instance's URN, or its Pulumi resource name (the last `::` segment of the
    URN). `on_progress` receives one human line per resource operation; it never receives property
    values, so no secret can reach it.
    """

    def __init__(
        self,
        stack: auto.Stack,
        *,
        instance: str,
        on_progress: Progress | None = None,
        protect_key: str = PROTECT_KEY,
    ) -> None:
        self.stack = stack
        self.instance = instance
        self.protect_key = protect_key
        self._say: Progress = on_progress or (lambda _line: None)

    # ------------------------------------------------------------ config and state

    def set_protect(self, protect: bool) -> None:
        """Set `freescout:protect` in the stack's config (a plain value: not a secret)."""
        value = "true" if protect else "false"
        self.stack.set_config(self.protect_key, auto.ConfigValue(value=value, secret=False))

    def _deployment(self) -> dict[str, Any]:
        return dict(self.stack.export_stack().deployment or {})

    def _resources(self) -> list[dict[str, Any]]:
        return list(self._deployment().get("resources") or [])

    def instance_urn(self) -> str | None:
        """The instance's URN in the current state, or None when the state has no instance."""
        urns = {r["urn"] for r in self._resources() if self._is_instance(r.get("urn", ""))}
        if len(urns) > 1:
            raise OpsError(
                f"{len(urns)} resources in stack {self.stack.name} match {self.instance!r}",
                hint="pass the instance's full URN (see `pulumi stack --show-urns`)",
            )
        return next(iter(urns)) if urns else None

    def _is_instance(self, urn: str) -> bool:
        if self.instance.startswith("urn:pulumi:"):
            return urn == self.instance
        return urn.rsplit("::", 1)[-1] == self.instance

    def instance_protected(self) -> bool:
        """The protect bit of the instance in the exported state (an `up` writes it, not config).

        Only a live entry counts: one flagged `delete` or `pendingReplacement` describes an
        instance that is gone or going. An unfinished operation on the instance (an engine killed
        mid-create) means the state cannot vouch for it: that is not confirmed, so False.
        """
        deployment = self._deployment()
        pending = [
            op
            for op in deployment.get("pending_operations") or []
            if self._is_instance(str((op.get("resource") or {}).get("urn", "")))
        ]
        if pending:
            kinds = ", ".join(sorted({str(op.get("type", "?")) for op in pending}))
            self._say(
                f"protect: the state holds an unfinished operation on the instance ({kinds}); "
                f"clear it with `pulumi refresh --stack {self.stack.name}` (or `pulumi cancel` "
                "first if the stack is locked)"
            )
            return False
        live = [
            r
            for r in deployment.get("resources") or []
            if self._is_instance(r.get("urn", ""))
            and not r.get("delete")
            and not r.get("pendingReplacement")
        ]
        if live:
            return all(bool(r.get("protect", False)) for r in live)
        raise OpsError(
            f"the state of stack {self.stack.name} has no live resource {self.instance!r}",
            hint=f"run `pulumi stack --stack {self.stack.name} --show-urns` to see the resources",
        )

    def outputs(self) -> dict[str, object]:
        """The stack's outputs; secret ones are replaced by "[secret]" so they cannot leak."""
        return {
            key: "[secret]" if out.secret else out.value
            for key, out in self.stack.outputs().items()
        }

    # ------------------------------------------------------------ operations

    def preview(self) -> PreviewResult:
        """A preview's steps; a failed preview (e.g. the protection error) fills `.error`."""
        run = _Run(self._say, report_steps=False)
        try:
            self.stack.preview(on_event=run.on_event, on_output=run.on_output)
        except auto.errors.CommandError as error:
            run.failed(error)
            errors = run.error_messages()
            if self._is_locked(run) or not errors:
                raise self._failure("preview", run) from error
            steps, _ = guard.steps_from_engine_events(run.events)
            return PreviewResult(steps=steps, error="\n".join(errors), change_summary=run.summary)
        try:
            # A preview that "succeeded" must have streamed its whole plan, summary included:
            # a truncated stream could hide the step that matters.
            steps, _ = guard.steps_from_engine_events(run.events, require_finished=True)
        except guard.UnreadablePlan as error:
            raise OpsError(
                "the preview's event stream ended before its summary",
                cause=error.message,
                hint="run `pulumi preview` by hand; nothing was changed",
            ) from error
        return PreviewResult(steps=steps, error=None, change_summary=run.summary)

    def preview_expect_no_changes(self) -> bool:
        """True when a preview with expect-no-changes passes, False when it proposes changes."""
        run = _Run(self._say, report_steps=False)
        try:
            self.stack.preview(
                expect_no_changes=True, on_event=run.on_event, on_output=run.on_output
            )
        except auto.errors.CommandError as error:
            run.failed(error)
            if _NO_CHANGES_EXPECTED in run.text() and not self._is_locked(run):
                return False
            raise self._failure("preview", run) from error
        return True

    def up(self, *, targets: Sequence[str] | None = None) -> UpResult:
        """Run `up` (optionally targeted), reporting each resource operation to the progress."""
        run = _Run(self._say, report_steps=True)
        what = f"`up` targeted at {', '.join(targets)}" if targets else "`up`"
        self._say(f"engine: {what} of stack {self.stack.name}")
        try:
            result = self.stack.up(
                target=list(targets) if targets else None,
                on_event=run.on_event,
                on_output=run.on_output,
            )
        except auto.errors.CommandError as error:
            run.failed(error)
            raise self._failure("up", run) from error
        changes = result.summary.resource_changes or run.summary
        return UpResult(change_summary={str(getattr(k, "value", k)): v for k, v in changes.items()})

    # ------------------------------------------------------------ failures

    def _is_locked(self, run: _Run) -> bool:
        return bool(_LOCKED.search(run.text()))

    def _failure(self, operation: str, run: _Run) -> OpsError:
        stack = self.stack.name
        locked = _LOCKED.search(run.text())
        if locked:
            line = next(
                (
                    ln[m.start() :].strip()
                    for ln in run.text().splitlines()
                    if (m := _LOCKED.search(ln))
                ),
                locked[0],
            )
            return StackLocked(
                f"stack {stack} is locked by another update",
                cause=line,
                hint="wait for the other update to finish and rerun; if none is running, remove "
                f"the stale lock with `pulumi cancel --stack {stack}`",
            )
        resource_errors = run.resource_error_messages()
        transient = next((m for m in resource_errors if _TRANSIENT_SSH.search(m)), None)
        if transient is not None:
            return TransientError(
                f"{operation} of stack {stack} failed on a transient SSH error during provisioning",
                cause=_first_line_matching(transient, _TRANSIENT_SSH),
                hint="wait a minute for sshd on the new instance, then rerun `pulumi up`",
            )
        if _PROTECTED in run.text():
            hint = (
                "the driver unprotects the instance only in the rebuild cycle: run "
                "`python scripts/rebuild.py`"
            )
        else:
            hint = f"run `pulumi {operation} --stack {stack}` to see the engine's full output"
        return OpsError(f"{operation} of stack {stack} failed:\n{run.tail()}", hint=hint)


def _first_line_matching(text: str, pattern: re.Pattern[str]) -> str:
    return next((ln.strip() for ln in text.splitlines() if pattern.search(ln)), text.strip())


class _Run:
    """What one engine operation reported: its events, its output tail, its failure text."""

    def __init__(self, say: Progress, *, report_steps: bool) -> None:
        self.events: list[Any] = []
        self.summary: dict[str, int] = {}
        self._say = say
        self._report_steps = report_steps
        self._output: deque[str] = deque(maxlen=200)
        self._failure = ""

    def on_output(self, line: str) -> None:
        self._output.append(line.rstrip("\n"))

    def on_event(self, event: Any) -> None:
        self.events.append(event)
        if event.summary_event is not None:
            changes = event.summary_event.resource_changes or {}
            self.summary = {str(getattr(k, "value", k)): int(v) for k, v in changes.items()}
        if not self._report_steps:
            return
        # Only the op, the type and the name: never inputs or outputs, so secrets stay out.
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            if _op(meta) != "same":
                self._say(f"engine: {_op(meta)} {_label(meta.urn)} ...")
        elif event.res_outputs_event is not None:
            meta = event.res_outputs_event.metadata
            if _op(meta) != "same":
                self._say(f"engine: {_op(meta)} {_label(meta.urn)} done")
        elif event.res_op_failed_event is not None:
            meta = event.res_op_failed_event.metadata
            self._say(f"engine: {_op(meta)} {_label(meta.urn)} FAILED")

    def failed(self, error: auto.errors.CommandError) -> None:
        self._failure = str(error)

    def text(self) -> str:
        return "\n".join([*self._output, self._failure, *self.error_messages()])

    def error_messages(self) -> list[str]:
        _, errors = guard.steps_from_engine_events(self.events)
        real = [e for e in errors if e and e not in _GENERIC_ERRORS]
        return real or [e for e in errors if e]

    def resource_error_messages(self) -> list[str]:
        return [
            str(e.diagnostic_event.message)
            for e in self.events
            if e.diagnostic_event is not None
            and str(getattr(e.diagnostic_event.severity, "value", e.diagnostic_event.severity))
            == "error"
            and e.diagnostic_event.urn
            and "::pulumi:pulumi:Stack::" not in e.diagnostic_event.urn
        ]

    def tail(self) -> str:
        lines = [ln for ln in self._output if ln.strip()]
        if not lines:
            lines = [ln for ln in self._failure.splitlines() if ln.strip()]
        return "\n".join(lines[-_TAIL_LINES:])


def _op(meta: Any) -> str:
    return str(getattr(meta.op, "value", meta.op))


def _label(urn: str) -> str:
    """`type name` from a URN (the type's last `$` segment: the resource's own type)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return urn
    return f"{parts[-2].rsplit('$', 1)[-1]} {parts[-1]}"
