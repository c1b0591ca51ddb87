"""Typed errors that carry what went wrong, the likely cause, and the next command to run."""

from __future__ import annotations

from operations import exitcodes


class OpsError(Exception):
    """An error the operator can act on: a message, an optional cause and a hint."""

    exit_code = exitcodes.FAILED

    def __init__(self, message: str, *, hint: str | None = None, cause: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.cause = cause

    def render(self) -> str:
        lines = [f"error: {self.message}"]
        if self.cause:
            lines.append(f"  cause: {self.cause}")
        if self.hint:
            lines.append(f"  next: {self.hint}")
        return "\n".join(lines)


class UsageError(OpsError):
    """Bad arguments or configuration; nothing was changed."""

    exit_code = exitcodes.USAGE


class StoppedByCheck(OpsError):
    """A safety check refused to go on; nothing was changed."""

    exit_code = exitcodes.STOPPED


class StackLocked(OpsError):
    """Another update holds the stack's lock."""

    exit_code = exitcodes.LOCKED


class TransientError(OpsError):
    """A failure worth retrying after a pause (SSH handshake during cloud-init, throttling)."""


class DeadlineExceeded(OpsError):
    """A wait ran out of time."""
