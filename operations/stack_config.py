"""Setting a stack's config secrets through the Pulumi CLI, with the value on standard input.

`pulumi config set --secret KEY` reads the value from stdin when stdin is not a terminal
(pkg/cmd/pulumi/config, configSetCmd.Run: `case !term.IsTerminal(...)`: io.ReadAll(stdin), then
one trailing newline is removed). The Automation API's `set_config` passes the value as an argument
instead, where any user of the machine can read it in the process list; so this module drives the
CLI itself. The child never inherits the vault's credentials, and the CLI's own error text is
scrubbed of the values it was given before it reaches a message.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operations.errors import OpsError, UsageError
from operations.vault import SETTINGS_ENV, SecretSource, SecretValue

# Never handed to the Pulumi CLI: it needs none of them.
_WITHHELD_ENV = frozenset(SETTINGS_ENV.values())

Runner = Callable[..., subprocess.CompletedProcess[bytes]]


@dataclass(frozen=True)
class ConfigEntry:
    """One key of the stack's config as the CLI reports it (value only with --show-secrets)."""

    key: str
    secret: bool
    value: SecretValue | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one key: "set", "unchanged", or with --dry-run "would set"."""

    key: str
    status: str


class StackConfig:
    """The config of one stack, read and written with the Pulumi CLI in the project folder."""

    def __init__(
        self,
        pulumi: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        stack: str,
        timeout_seconds: float = 120.0,
        run: Runner = subprocess.run,
    ):
        self.pulumi = pulumi
        self.cwd = Path(cwd)
        self.stack = stack
        self.timeout_seconds = timeout_seconds
        self._env = {k: v for k, v in env.items() if k not in _WITHHELD_ENV}
        self._run = run

    def __repr__(self) -> str:
        return f"StackConfig(stack={self.stack!r}, cwd={str(self.cwd)!r})"

    def set(self, key: str, value: SecretValue, *, secret: bool = True) -> None:
        """Set `key` (encrypted when `secret`); the value goes to the CLI on stdin only."""
        mode = "--secret" if secret else "--plaintext"
        # No trailing newline: the CLI would strip one anyway, and the value is sent as is.
        self._cli(
            ["config", "set", mode, "--stack", self.stack, key],
            what=f"setting {key}",
            stdin=value.reveal().encode("utf-8"),
            known=(value,),
        )

    def entries(self, *, show_secrets: bool = False) -> dict[str, ConfigEntry]:
        """The stack's config keys; secret values only with `show_secrets` (needs passphrase)."""
        args = ["config", "--json", "--stack", self.stack]
        if show_secrets:
            args.append("--show-secrets")
        out = self._cli(args, what="reading the stack's config", stdin=b"", known=())
        try:
            data = json.loads(out or b"{}")
        except json.JSONDecodeError:
            raise OpsError(
                "pulumi config --json printed something that is not JSON",
                hint=f"run: pulumi config --stack {self.stack}",
            ) from None
        if not isinstance(data, dict):
            raise OpsError("pulumi config --json printed an unexpected shape")
        result: dict[str, ConfigEntry] = {}
        for key, item in data.items():
            item = item if isinstance(item, dict) else {}
            raw = item.get("value")
            result[key] = ConfigEntry(
                key=key,
                secret=bool(item.get("secret")),
                value=SecretValue(raw) if isinstance(raw, str) else None,
            )
        return result

    def keys_set(self) -> dict[str, bool]:
        """Read-back check without decrypting: each key that is set, and whether it is secret."""
        return {key: entry.secret for key, entry in self.entries(show_secrets=False).items()}

    def _cli(
        self, args: list[str], *, what: str, stdin: bytes, known: Sequence[SecretValue]
    ) -> bytes:
        argv = [self.pulumi, *args, "--non-interactive"]
        try:
            done = self._run(
                argv,
                cwd=self.cwd,
                env=self._env,
                input=stdin,
                capture_output=True,
                timeout=self.timeout_seconds,
                check=False,
            )
        except FileNotFoundError:
            raise UsageError(
                f"the Pulumi CLI was not found at {self.pulumi}",
                hint="install Pulumi, or pass --pulumi PATH (sh tools/setup.sh builds one)",
            ) from None
        except subprocess.TimeoutExpired:
            raise OpsError(
                f"pulumi did not finish {what} within {self.timeout_seconds:g}s",
                hint=f"check the backend, then rerun (pulumi config --stack {self.stack})",
            ) from None
        if done.returncode != 0:
            raise _cli_error(done.stderr, what=what, stack=self.stack, known=known)
        return bytes(done.stdout)


def _scrub(text: str, known: Iterable[SecretValue]) -> str:
    for value in known:
        plain = value.reveal()
        if plain:
            text = text.replace(plain, "***")
    return text


def _cli_error(stderr: bytes, *, what: str, stack: str, known: Sequence[SecretValue]) -> OpsError:
    text = _scrub(stderr.decode("utf-8", "replace"), known).strip()
    last = text.splitlines()[-1] if text else "(no error output)"
    lowered = text.lower()
    if "no stack named" in lowered:
        return UsageError(
            f"the stack {stack} does not exist in the current backend",
            cause=last,
            hint=f"log in to the right backend (pulumi login ...) or create it: "
            f"pulumi stack init {stack}",
        )
    if "passphrase" in lowered:
        return UsageError(
            f"pulumi could not use the stack's passphrase while {what}",
            cause=last,
            hint="export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) for this "
            "stack, then rerun",
        )
    if "no pulumi.yaml" in lowered:
        return UsageError(
            "no Pulumi project here",
            cause=last,
            hint="run from the repository root, or pass --project-dir",
        )
    if "login" in lowered or "access token" in lowered:
        return UsageError(
            f"pulumi is not logged in to a backend while {what}",
            cause=last,
            hint="run: pulumi login (or export PULUMI_BACKEND_URL / PULUMI_ACCESS_TOKEN)",
        )
    return OpsError(f"pulumi failed {what}", cause=last, hint=f"run: pulumi config --stack {stack}")


def plan_changes(
    current: Mapping[str, ConfigEntry],
    sources: Sequence[SecretSource],
    values: Mapping[str, SecretValue],
) -> list[SecretSource]:
    """The sources whose value or secrecy differs from the stack's current config."""
    changes: list[SecretSource] = []
    for source in sources:
        entry = current.get(source.key)
        same = (
            entry is not None
            and entry.secret == source.secret
            and entry.value is not None
            and entry.value == values[source.key]
        )
        if not same:
            changes.append(source)
    return changes


def apply_secrets(
    config: StackConfig,
    sources: Sequence[SecretSource],
    values: Mapping[str, SecretValue],
    *,
    dry_run: bool = False,
    on_outcome: Callable[[Outcome], Any] | None = None,
) -> list[Outcome]:
    """Set every source whose value changed, then read back that each key is set as mapped.

    `values` must already hold every source (fetch all first): a vault failure then changes
    nothing. A CLI failure midway leaves the earlier keys set; the error names the key.
    """
    missing = [s.key for s in sources if s.key not in values]
    if missing:
        raise OpsError(f"no fetched value for: {', '.join(missing)}")
    current = config.entries(show_secrets=True)
    changes = {s.key for s in plan_changes(current, sources, values)}
    outcomes: list[Outcome] = []
    for source in sources:
        if source.key not in changes:
            outcome = Outcome(source.key, "unchanged")
        elif dry_run:
            outcome = Outcome(source.key, "would set")
        else:
            config.set(source.key, values[source.key], secret=source.secret)
            outcome = Outcome(source.key, "set")
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    if not dry_run:
        verify_keys(config, sources)
    return outcomes


def verify_keys(config: StackConfig, sources: Sequence[SecretSource]) -> None:
    """Read back (without --show-secrets) that every key is set, as a secret where mapped so."""
    present = config.keys_set()
    wrong = [s.key for s in sources if s.key not in present or (s.secret and not present[s.key])]
    if wrong:
        raise OpsError(
            f"after setting, these keys are missing or not secret: {', '.join(wrong)}",
            hint=f"run: pulumi config --stack {config.stack}, then rerun sync_secrets",
        )
