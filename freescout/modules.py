"""The catalog of FreeScout paid modules this stack can install.

The rebuild driver's verify step imports this to know which aliases must show as Active.
A module is enabled by listing its short name in the stack config `freescout:modules`; its
license key lives in the secret config `freescout:license_<short name>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Module:
    """One paid module: config short name, FreeScout alias, display name, prerequisites."""

    short: str
    alias: str
    name: str
    needs: tuple[str, ...] = ()

    @property
    def license_key(self) -> str:
        """Config key (without the `freescout:` namespace) that holds this module's license."""
        return f"license_{self.short}"


# Catalog order is the install order among modules with no dependency between them.
CATALOG: tuple[Module, ...] = (
    Module("api_webhooks", "apiwebhooks", "API & Webhooks"),
    Module("reports", "reports", "Reports"),
    Module("oauth", "oauth", "OAuth"),
    Module("custom_fields", "customfields", "Custom Fields"),
    Module("tags", "tags", "Tags"),
    Module("workflows", "workflows", "Workflows", needs=("tags", "custom_fields")),
    Module("customization", "customization", "Customization"),
    Module("saved_replies", "savedreplies", "Saved Replies"),
    Module("slack", "slack", "Slack"),
    Module("custom_folders", "customfolders", "Custom Folders"),
)

BY_SHORT: dict[str, Module] = {m.short: m for m in CATALOG}
BY_ALIAS: dict[str, Module] = {m.alias: m for m in CATALOG}
SHORT_NAMES: tuple[str, ...] = tuple(m.short for m in CATALOG)


def unknown(shorts: Iterable[str]) -> list[str]:
    """The names in `shorts` that are not in the catalog, in the order given."""
    return [s for s in shorts if s not in BY_SHORT]


def missing_needs(shorts: Iterable[str]) -> dict[str, list[str]]:
    """For each enabled module, the prerequisites that are not enabled (only non-empty ones)."""
    enabled = set(shorts)
    gaps: dict[str, list[str]] = {}
    for short in shorts:
        module = BY_SHORT.get(short)
        if module is None:
            continue
        lacking = [need for need in module.needs if need not in enabled]
        if lacking:
            gaps[short] = lacking
    return gaps


def install_order(shorts: Iterable[str]) -> list[Module]:
    """The enabled modules in an order where each comes after the modules it needs.

    Ties keep catalog order, so the order is stable across runs (a change of order would
    re-create provisioning steps for nothing). Prerequisites must be enabled: check with
    `missing_needs` first.
    """
    enabled = {s for s in shorts if s in BY_SHORT}
    ordered: list[Module] = []
    placed: set[str] = set()
    while len(placed) < len(enabled):
        progressed = False
        for module in CATALOG:
            if module.short in enabled and module.short not in placed:
                if all(need in placed or need not in enabled for need in module.needs):
                    ordered.append(module)
                    placed.add(module.short)
                    progressed = True
                    break
        if not progressed:  # a cycle cannot happen with this catalog; fail loudly if edited so
            raise ValueError(f"module dependency cycle among {sorted(enabled - placed)}")
    return ordered
