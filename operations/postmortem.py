"""The postmortem of a rebuild, filled from the run in the runbook's template.

Written to docs/ops/postmortems/freescout-rebuild-<YYYY-MM-DD>.md. A second rebuild on the same
day appends its own section, so no earlier record is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class PostmortemFacts:
    started_at: datetime
    trigger: str
    plan_counts: Mapping[str, int]
    result: str  # succeeded | partial | rolled back | failed
    minutes_to_modules_active: float | None
    snapshot_name: str | None
    post_install_snapshot: str | None
    run_id: str
    failure: str | None = None
    root_cause: str | None = None
    followups: str | None = None


def plan_summary(counts: Mapping[str, int]) -> str:
    """The runbook's "N add, N change, N destroy"; a replace is one add and one destroy."""
    replace = counts.get("replace", 0)
    add = counts.get("create", 0) + replace
    change = counts.get("update", 0)
    destroy = counts.get("delete", 0) + replace
    text = f"{add} add, {change} change, {destroy} destroy"
    return text + (f" ({replace} replaced)" if replace else "")


def render(facts: PostmortemFacts) -> str:
    stamp = facts.started_at.strftime("%Y-%m-%d %H:%M:%SZ")
    minutes = (
        f"{facts.minutes_to_modules_active:.1f}"
        if facts.minutes_to_modules_active is not None
        else "n/a (modules not verified active)"
    )
    lines = [
        f"### FreeScout Lightsail rebuild — {stamp}",
        "",
        f"- Trigger: {facts.trigger or 'not given (use --trigger)'}",
        f"- Plan summary: {plan_summary(facts.plan_counts)}",
        f"- Apply result: {facts.result}",
        f"- Time to apply (start → modules active): {minutes}",
        f"- Snapshot ID used: {facts.snapshot_name or 'none taken'}",
        f"- Post-install snapshot (fast-restore target): {facts.post_install_snapshot or 'none'}",
        f"- Root cause (if rebuild was unplanned): {facts.root_cause or 'n/a'}",
        f"- Followups: {facts.followups or 'none filed'}",
        f"- Run journal: .runs/{facts.run_id}/journal.json",
    ]
    if facts.failure:
        lines.append(f"- Failure: {facts.failure}")
    return "\n".join(lines) + "\n"


def write(directory: Path, facts: PostmortemFacts) -> Path:
    """Write (or append to) the day's postmortem file and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"freescout-rebuild-{facts.started_at.strftime('%Y-%m-%d')}.md"
    section = render(facts)
    if path.exists():
        existing = path.read_text(encoding="utf-8")
        section = existing.rstrip("\n") + "\n\n" + section
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(section, encoding="utf-8")
    tmp.replace(path)
    return path
