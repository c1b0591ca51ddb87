"""The run journal: one folder per run under .runs/, written atomically, so a run can resume.

The journal holds phase statuses, names (instance, snapshots), counts and verdicts: never a
secret. Every write goes to a temporary file first and is moved into place with os.replace, mode
0600, so a crash leaves either the old journal or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from operations.errors import UsageError


class Phase(StrEnum):
    """The phases of the rebuild cycle, in order."""

    PREFLIGHT = "preflight"
    PLAN = "plan"
    SNAPSHOT = "snapshot"
    REPLACE = "replace"
    REPROTECT = "reprotect"
    VERIFY = "verify"
    POST_INSTALL = "post-install"


PHASES: tuple[Phase, ...] = tuple(Phase)


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    STOPPED = "stopped"  # a check said no; nothing changed
    FAILED = "failed"
    DRY_RUN = "dry-run"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Journal:
    """In-memory view of one run's journal; `save()` writes it atomically."""

    path: Path
    run_id: str
    stack: str
    started_at: str
    state: RunState = RunState.RUNNING
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------ phases

    def status(self, phase: Phase) -> Status:
        return Status(self.phases.get(phase.value, {}).get("status", Status.PENDING.value))

    def start(self, phase: Phase) -> None:
        entry = self.phases.setdefault(phase.value, {})
        entry["status"] = Status.RUNNING.value
        entry.setdefault("started_at", _iso(utc_now()))
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        self.note(f"{phase.value}: started")

    def finish(self, phase: Phase, **detail: Any) -> None:
        entry = self.phases.setdefault(phase.value, {})
        entry["status"] = Status.DONE.value
        entry["ended_at"] = _iso(utc_now())
        entry.update(detail)
        self.note(f"{phase.value}: done")

    def fail(self, phase: Phase, message: str) -> None:
        entry = self.phases.setdefault(phase.value, {})
        entry["status"] = Status.FAILED.value
        entry["ended_at"] = _iso(utc_now())
        entry["error"] = message
        self.note(f"{phase.value}: failed: {message}")

    def first_unfinished(self) -> Phase | None:
        for phase in PHASES:
            if self.status(phase) is not Status.DONE:
                return phase
        return None

    def note(self, text: str) -> None:
        self.events.append({"at": _iso(utc_now()), "event": text})
        self.save()

    # ------------------------------------------------------------ storage

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "stack": self.stack,
            "started_at": self.started_at,
            "state": self.state.value,
            "phases": self.phases,
            "facts": self.facts,
            "events": self.events,
        }

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".journal-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class JournalStore:
    """The folder of run journals (default: .runs/ in the project)."""

    def __init__(self, root: Path):
        self.root = root

    def new(self, stack: str, now: datetime | None = None) -> Journal:
        moment = now or utc_now()
        run_id = moment.strftime("%Y%m%dT%H%M%SZ")
        suffix = 1
        while (self.root / run_id).exists():
            suffix += 1
            run_id = f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{suffix}"
        journal = Journal(
            path=self.root / run_id / "journal.json",
            run_id=run_id,
            stack=stack,
            started_at=_iso(moment),
        )
        journal.save()
        return journal

    def load(self, run_id: str) -> Journal:
        path = self.root / run_id / "journal.json"
        if not path.is_file():
            known = ", ".join(self.run_ids()) or "none"
            raise UsageError(
                f"no run journal named {run_id!r} in {self.root}",
                hint=f"pick one of: {known}",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Journal(
                path=path,
                run_id=data["run_id"],
                stack=data["stack"],
                started_at=data["started_at"],
                state=RunState(data["state"]),
                phases=dict(data.get("phases", {})),
                facts=dict(data.get("facts", {})),
                events=list(data.get("events", [])),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise UsageError(
                f"run journal {path} is damaged: {error}",
                hint="inspect it by hand; start a new run without --resume",
            ) from error

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "journal.json").is_file())

    def latest_resumable(self, stack: str) -> Journal:
        """The newest run of `stack` that did not finish."""
        for run_id in reversed(self.run_ids()):
            journal = self.load(run_id)
            if journal.facts.get("dry_run"):
                continue  # a dry run changes nothing and is never continued as a rebuild
            if journal.stack == stack and journal.state in (RunState.RUNNING, RunState.FAILED):
                return journal
        raise UsageError(
            f"no unfinished rebuild run of stack {stack!r} in {self.root}",
            hint="start a new run: python scripts/rebuild.py --stack " + stack,
        )
