"""The non-secret facts of a stack, read from its Pulumi.<stack>.yaml (no engine needed).

The file is read and judged by freescout/settings.py, the same reader and validators the
program's offline plan uses, so scripts/rebuild.py and scripts/restore.py refuse exactly the
values the program would refuse (exit 2, naming the key and the command that fixes it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from freescout import modules as catalog
from freescout import settings
from operations.rebuild import Target

NAMESPACE = settings.NS

# The keys the rebuild and restore tools act on; problems with other keys (an unset secret,
# the Cloudflare zone) are for `pulumi up` to report, not a reason to refuse a restore.
TARGET_KEYS: frozenset[str] = frozenset({
    "aws:region",
    f"{NAMESPACE}:instance_name",
    f"{NAMESPACE}:static_ip_name",
    f"{NAMESPACE}:hostname",
    f"{NAMESPACE}:availability_zone",
    f"{NAMESPACE}:bundle_id",
    f"{NAMESPACE}:protect",
    settings.MODULES_KEY,
})


def read_config(project_root: Path, stack: str) -> dict[str, Any]:
    """The stack file's `config:` mapping, keys and values as written (`freescout:hostname`...).

    UsageError when the file is missing, not YAML, or not shaped as a stack file.
    """
    return dict(settings.read_stack_file(project_root, stack).raw)


def load_target(project_root: Path, stack: str) -> Target:
    """What scripts/rebuild.py and restore.py act on; UsageError naming every bad key."""
    found = settings.read_stack_file(project_root, stack)
    problems = [
        _for_stack(p, stack)
        for p in settings.validate(found.values, found.encrypted)
        if p.key in TARGET_KEYS and not _unset_modules(p)
    ]
    if problems:
        raise settings.InvalidConfig(problems, stack)
    values = found.values
    shorts = settings.parse_modules(values.get(settings.MODULES_KEY, "[]")) or []
    return Target(
        stack=stack,
        instance_name=values[f"{NAMESPACE}:instance_name"],
        static_ip_name=values[f"{NAMESPACE}:static_ip_name"],
        hostname=values[f"{NAMESPACE}:hostname"],
        module_aliases=tuple(m.alias for m in catalog.install_order(shorts)),
        availability_zone=values[f"{NAMESPACE}:availability_zone"],
        bundle_id=values[f"{NAMESPACE}:bundle_id"],
    )


def _unset_modules(problem: settings.Problem) -> bool:
    # A restore needs no module list (the snapshot holds the modules), and a rebuild's preview
    # stops on it through the program; a list that is written must be right, though.
    return problem.key == settings.MODULES_KEY and problem.kind == "missing"


def _for_stack(problem: settings.Problem, stack: str) -> settings.Problem:
    """The problem with its fix aimed at `stack` (the tools take --stack; pulumi may not)."""
    fix = problem.fix
    for verb in ("set", "rm"):
        fix = fix.replace(f"pulumi config {verb} ", f"pulumi config {verb} --stack {stack} ", 1)
    return dataclasses.replace(problem, fix=fix)


def config_value(project_root: Path, stack: str, key: str, default: Any = None) -> Any:
    """One plain config value as written (e.g. `aws:region`, `freescout:ssh_user`)."""
    return read_config(project_root, stack).get(key, default)
