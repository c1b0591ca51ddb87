"""The non-secret facts of a stack, read from its Pulumi.<stack>.yaml (no engine needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from freescout import modules as catalog
from operations.errors import UsageError
from operations.rebuild import Target

NAMESPACE = "freescout"


def read_config(project_root: Path, stack: str) -> dict[str, Any]:
    """The stack file's `config:` mapping, keys as written (`freescout:hostname`, ...)."""
    path = project_root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise UsageError(
            f"no stack file {path.name} in {project_root}",
            hint=f"create the stack first: pulumi stack init {stack}",
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"{path.name} is not valid YAML: {error}") from error
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise UsageError(f"{path.name}: `config` must be a mapping")
    return config


def load_target(project_root: Path, stack: str) -> Target:
    """What scripts/rebuild.py rebuilds, from the stack file; names every missing key."""
    config = read_config(project_root, stack)

    def value(key: str, default: str | None = None) -> str:
        found = config.get(f"{NAMESPACE}:{key}", default)
        if found is None or (isinstance(found, str) and not found.strip()):
            problems.append(f"pulumi config set --stack {stack} {NAMESPACE}:{key} <value>")
            return ""
        if isinstance(found, str) and found.startswith("REPLACE_WITH_"):
            problems.append(
                f"pulumi config set --stack {stack} {NAMESPACE}:{key} <value>"
                " (the file holds a placeholder)"
            )
            return ""
        return str(found)

    problems: list[str] = []
    target_modules = config.get(f"{NAMESPACE}:modules", [])
    if isinstance(target_modules, str):
        target_modules = [m.strip() for m in target_modules.split(",") if m.strip()]
    unknown = catalog.unknown(target_modules)
    if unknown:
        problems.append(
            f"unknown module(s) {', '.join(unknown)} in {NAMESPACE}:modules "
            f"(known: {', '.join(catalog.SHORT_NAMES)})"
        )
    target = Target(
        stack=stack,
        instance_name=value("instance_name"),
        static_ip_name=value("static_ip_name"),
        hostname=value("hostname"),
        module_aliases=tuple(
            catalog.BY_SHORT[m].alias for m in target_modules if m in catalog.BY_SHORT
        ),
        availability_zone=value("availability_zone", "us-east-1a"),
        bundle_id=value("bundle_id", "micro_3_0"),
    )
    if problems:
        raise UsageError(
            f"Pulumi.{stack}.yaml is missing what the rebuild needs:\n  " + "\n  ".join(problems)
        )
    return target


def config_value(project_root: Path, stack: str, key: str, default: Any = None) -> Any:
    """One plain config value (e.g. `aws:region`, `freescout:ssh_user`)."""
    return read_config(project_root, stack).get(key, default)
