"""Checks on the instance over a RemoteShell: is there data, is cloud-init done, are modules on.

Each check is a command builder, a pure parser of its output (tested on samples from the field
notes), and a small function that runs one over a shell. A parser that does not recognise what it
reads says UNKNOWN, and UNKNOWN never passes: it stops a destroy exactly as "has data" does.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from operations.errors import DeadlineExceeded, OpsError, TransientError
from operations.ports import CommandResult, RemoteShell
from operations.retry import Backoff, Clock, poll

SUDO: tuple[str, ...] = ("sudo", "-n")
"""How commands that need root are prefixed on the instance (-n: never prompt, fail instead)."""


def _as_root(script: str, privilege: Sequence[str]) -> str:
    """`<privilege> sh -c '<script>'`: one quoted argument, so nothing of the script is split."""
    return " ".join([*(shlex.quote(p) for p in privilege), "sh", "-c", shlex.quote(script)])


def _first_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("ERROR"):
            return line
    return lines[-1] if lines else ""


# ---------------------------------------------------------------- data check (F7)

DATA_QUERY = "SELECT COUNT(*) FROM conversations; SELECT COUNT(*) FROM users;"


class DataState(Enum):
    HAS_DATA = "has-data"
    EMPTY = "empty"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DataCheck:
    """What the database holds: counts when they could be read, and a verdict."""

    state: DataState
    conversations: int | None = None
    users: int | None = None
    detail: str = ""

    @property
    def blocks_destroy(self) -> bool:
        """True unless the database is known to be empty (UNKNOWN blocks, as data does)."""
        return self.state is not DataState.EMPTY

    def describe(self) -> str:
        if self.state is DataState.UNKNOWN:
            return f"data check inconclusive: {self.detail}"
        return f"{self.conversations} conversations, {self.users} users ({self.state.value})"


def data_check_command(
    *,
    password_file: str = "/root/.freescout_db_pass",
    db_user: str = "freescout",
    database: str = "freescout",
    privilege: Sequence[str] = SUDO,
    mysql_options: Sequence[str] = (),
) -> str:
    """The runbook's count query, run as root so the root-only password file can be read.

    The password goes from the file into MYSQL_PWD inside the remote shell: it appears in no
    argument, neither of ssh here nor of mysql there. `-N -B` and no pty: bare numbers, no table.
    `set -e` stops the script when the file cannot be read, instead of trying an empty password.
    """
    mysql = [
        "mysql",
        *mysql_options,
        "-N",
        "-B",
        "-u",
        db_user,
        database,
        "-e",
        DATA_QUERY,
    ]
    script = (
        f"set -eu; MYSQL_PWD=$(cat {shlex.quote(password_file)}); export MYSQL_PWD; "
        f"exec {' '.join(shlex.quote(part) for part in mysql)}"
    )
    return _as_root(script, privilege)


def parse_data_check(result: CommandResult) -> DataCheck:
    """Judge the query's output: exit 0 and exactly two lines of digits, else UNKNOWN.

    Has data = conversations > 0 or users > 1 (a fresh install has one admin user).
    """
    if result.exit_code != 0:
        reason = _first_error_line(result.stderr) or "no error text"
        return DataCheck(DataState.UNKNOWN, detail=f"query exited {result.exit_code}: {reason}")
    text = result.stdout
    if text.endswith("\n"):
        text = text[:-1]
    lines = [line.strip() for line in text.split("\n")] if text else []
    if len(lines) != 2 or not all(re.fullmatch(r"\d+", line) for line in lines):
        shown = result.stdout.strip().replace("\n", " | ")[:120]
        return DataCheck(DataState.UNKNOWN, detail=f"unexpected query output: {shown!r}")
    conversations, users = (int(line) for line in lines)
    state = DataState.HAS_DATA if conversations > 0 or users > 1 else DataState.EMPTY
    return DataCheck(state, conversations=conversations, users=users)


def check_data(shell: RemoteShell, *, timeout: float = 60, **command_options) -> DataCheck:
    """Run the data check over `shell` (options as for data_check_command).

    SSH failures are raised (typed, from the shell); everything the database says is a DataCheck.
    """
    return parse_data_check(shell.run(data_check_command(**command_options), timeout=timeout))


# ---------------------------------------------------------------- cloud-init (F4)

CLOUD_INIT_LOG = "/var/log/cloud-init-output.log"
CLOUD_INIT_BACKOFF = Backoff(first=10.0, factor=1.3, maximum=30.0)
_TOP_KEYS = {
    "status",
    "extended_status",
    "boot_status_code",
    "last_update",
    "detail",
    "errors",
    "recoverable_errors",
    "time",
}


class CloudInitState(Enum):
    DONE = "done"
    ERROR = "error"
    DEGRADED = "degraded"  # done, with recoverable errors (cloud-init >= 23.4, exit code 2)
    RUNNING = "running"  # also "not started" / "not run": poll again
    UNKNOWN = "unknown"  # anything not recognised: a failure, never a pass


@dataclass(frozen=True)
class CloudInitStatus:
    state: CloudInitState
    status: str | None
    exit_code: int
    extended_status: str | None = None
    errors: tuple[str, ...] = ()
    recoverable_errors: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        parts = [f"cloud-init {self.state.value} (status: {self.status}, exit {self.exit_code})"]
        if self.extended_status:
            parts.append(f"extended: {self.extended_status}")
        if self.errors:
            parts.append("errors: " + "; ".join(self.errors))
        if self.recoverable_errors:
            parts.append("recoverable: " + "; ".join(self.recoverable_errors))
        if self.detail and not self.errors:
            parts.append(f"detail: {self.detail}")
        return ", ".join(parts)


def _block(lines: list[str], key: str) -> list[str]:
    """The lines under a top-level `key:` up to the next top-level key (inline value first)."""
    out: list[str] = []
    inside = False
    for line in lines:
        match = re.match(r"^\.*([a-z_]+):\s*(.*)$", line)
        if match and match.group(1) in _TOP_KEYS:
            if inside:
                break
            if match.group(1) == key:
                inside = True
                inline = match.group(2).strip()
                if inline and inline != "[]":
                    out.append(inline)
            continue
        if inside and line.strip():
            out.append(line.strip())
    return out


def parse_cloud_init_status(stdout: str, exit_code: int) -> CloudInitStatus:
    """Read `cloud-init status --long`: the `status:` line (after any progress dots) and the code.

    error (status error, or exit 1) > running > degraded (exit 2 or extended_status degraded)
    > done (exit 0). No status line, `disabled`, an odd exit code: UNKNOWN.
    """
    lines = stdout.replace("\r", "").splitlines()
    status = None
    for line in lines:
        match = re.match(r"^\.*\s*status:\s*(.+?)\s*$", line)
        if match:
            status = match.group(1).lower()
            break
    extended = next(iter(_block(lines, "extended_status")), None)
    errors = tuple(
        e.lstrip("- ").strip() for e in _block(lines, "errors") if e.startswith("-") or "(" in e
    )
    recoverable = tuple(
        e.lstrip("- ").strip() for e in _block(lines, "recoverable_errors") if e.startswith("-")
    )
    detail = " ".join(_block(lines, "detail"))[:500]

    def result(state: CloudInitState) -> CloudInitStatus:
        return CloudInitStatus(state, status, exit_code, extended, errors, recoverable, detail)

    if status is None:
        return result(CloudInitState.UNKNOWN)
    if status == "error" or exit_code == 1:
        return result(CloudInitState.ERROR)
    if exit_code not in (0, 2):
        return result(CloudInitState.UNKNOWN)
    if status in {"running", "not started", "not run"}:
        return result(CloudInitState.RUNNING)
    if status == "done":
        degraded = exit_code == 2 or (extended or "").lower().startswith("degraded")
        return result(CloudInitState.DEGRADED if degraded else CloudInitState.DONE)
    return result(CloudInitState.UNKNOWN)


def cloud_init_status(
    shell: RemoteShell, *, privilege: Sequence[str] = SUDO, timeout: float = 60
) -> CloudInitStatus:
    """Run `cloud-init status --long` on the host and parse it."""
    result = shell.run(_as_root("cloud-init status --long", privilege), timeout=timeout)
    status = parse_cloud_init_status(result.stdout, result.exit_code)
    if status.state is CloudInitState.UNKNOWN and not status.detail:
        return CloudInitStatus(
            status.state,
            status.status,
            status.exit_code,
            status.extended_status,
            status.errors,
            status.recoverable_errors,
            detail=_first_error_line(result.stderr),
        )
    return status


def cloud_init_log_tail(
    shell: RemoteShell,
    *,
    lines: int = 40,
    path: str = CLOUD_INIT_LOG,
    privilege: Sequence[str] = SUDO,
) -> str:
    """The last `lines` lines of cloud-init's output log ('' when it cannot be read)."""
    script = f"tail -n {int(lines)} {shlex.quote(path)}"
    result = shell.run(_as_root(script, privilege), timeout=60)
    return result.stdout if result.exit_code == 0 else ""


def require_cloud_init_done(
    shell: RemoteShell,
    status: CloudInitStatus,
    *,
    allow_degraded: bool = False,
    log_path: str = CLOUD_INIT_LOG,
    privilege: Sequence[str] = SUDO,
) -> CloudInitStatus:
    """Pass a DONE status through; raise for error (with the log's tail), unknown, running."""
    if status.state is CloudInitState.DONE:
        return status
    if status.state is CloudInitState.DEGRADED and allow_degraded:
        return status
    if status.state is CloudInitState.ERROR:
        tail = cloud_init_log_tail(shell, path=log_path, privilege=privilege).rstrip()
        raise OpsError(
            "cloud-init finished with an error on the new instance",
            cause=status.describe() + (f"\n--- tail of {log_path} ---\n{tail}" if tail else ""),
            hint=f"read {log_path} and /var/log/freescout-bootstrap.log on the host",
        )
    if status.state is CloudInitState.DEGRADED:
        raise OpsError(
            "cloud-init finished with recoverable errors (degraded)",
            cause=status.describe(),
            hint="read `sudo cloud-init status --long` on the host; fix, or accept degraded",
        )
    if status.state is CloudInitState.RUNNING:
        raise OpsError("cloud-init is still running", cause=status.describe())
    raise OpsError(
        "cloud-init status could not be read",
        cause=status.describe(),
        hint="run `sudo cloud-init status --long` on the host",
    )


def wait_cloud_init(
    shell: RemoteShell,
    *,
    deadline_seconds: float,
    clock: Clock | None = None,
    backoff: Backoff = CLOUD_INIT_BACKOFF,
    on_progress: Callable[[str], None] | None = None,
    allow_degraded: bool = False,
    privilege: Sequence[str] = SUDO,
) -> CloudInitStatus:
    """Poll cloud-init while it runs (SSH dropping during its sshd restart is waited out), then
    require it done. Raises DeadlineExceeded when it is still running at the deadline."""
    last: list[CloudInitStatus] = []

    def probe() -> CloudInitStatus | None:
        try:
            status = cloud_init_status(shell, privilege=privilege)
        except TransientError:
            return None
        last[:] = [status]
        return None if status.state is CloudInitState.RUNNING else status

    def waiting(elapsed: float, pause: float) -> None:
        if on_progress:
            seen = last[0].describe() if last else "no answer yet"
            on_progress(f"waiting for cloud-init: {elapsed:.0f}s so far ({seen})")

    try:
        final = poll(
            probe,
            what="cloud-init",
            deadline_seconds=deadline_seconds,
            backoff=backoff,
            clock=clock,
            on_wait=waiting,
        )
    except DeadlineExceeded as error:
        raise DeadlineExceeded(
            f"cloud-init did not finish within {deadline_seconds:.0f}s",
            cause=last[0].describe() if last else "the host never answered",
            hint="ssh to the host and run `sudo cloud-init status --long`; rerun with --resume",
        ) from error
    return require_cloud_init_done(shell, final, allow_degraded=allow_degraded, privilege=privilege)


# ---------------------------------------------------------------- module list (F3)

ACTIVE_STATUSES = frozenset({"enabled", "active"})
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def module_key(name: str) -> str:
    """Compare module names loosely: `ApiWebhooks`, `apiwebhooks`, `api_webhooks` are one."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def module_list_command(
    app_dir: str = "/var/www/html/freescout",
    as_user: Sequence[str] = ("sudo", "-n", "-u", "www-data"),
) -> str:
    """`php artisan module:list` in FreeScout's folder, as the web server's user."""
    prefix = " ".join(shlex.quote(p) for p in as_user)
    return f"cd {shlex.quote(app_dir)} && {prefix} php artisan module:list".strip()


def parse_module_list(text: str) -> dict[str, str]:
    """Read the table FreeScout's `module:list` prints (nwidart/laravel-modules 2.x:
    Name | Status | Order | Path; Status is Enabled or Disabled). An Alias column, when a version
    prints one, is read too. Returns {name or alias: status}. Raises OpsError without a header.
    """
    rows = [
        [cell.strip() for cell in _ANSI.sub("", line).strip().strip("|").split("|")]
        for line in text.replace("\r", "").splitlines()
        if line.strip().startswith("|")
    ]
    if not rows:
        raise OpsError("module:list printed no table", cause=text.strip()[:300])
    header = [cell.lower() for cell in rows[0]]
    if "name" not in header or "status" not in header:
        raise OpsError(
            "module:list table has no Name and Status columns", cause=" | ".join(rows[0])
        )
    name_at, status_at = header.index("name"), header.index("status")
    alias_at = header.index("alias") if "alias" in header else None
    modules: dict[str, str] = {}
    for row in rows[1:]:
        if len(row) != len(header):
            raise OpsError("module:list table row does not fit its header", cause=" | ".join(row))
        modules[row[name_at]] = row[status_at]
        if alias_at is not None and row[alias_at]:
            modules[row[alias_at]] = row[status_at]
    return modules


@dataclass(frozen=True)
class ModuleCheck:
    active: tuple[str, ...]
    inactive: tuple[tuple[str, str], ...]  # (module, the status shown)
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.inactive and not self.missing

    def describe(self) -> str:
        parts = [f"{len(self.active)} active"]
        if self.inactive:
            parts.append("not active: " + ", ".join(f"{m} ({s})" for m, s in self.inactive))
        if self.missing:
            parts.append("missing: " + ", ".join(self.missing))
        return "; ".join(parts)


def check_modules(listing: dict[str, str], expected: Iterable[str]) -> ModuleCheck:
    """Every expected module must be listed with status Enabled/Active."""
    by_key = {module_key(name): status for name, status in listing.items()}
    active: list[str] = []
    inactive: list[tuple[str, str]] = []
    missing: list[str] = []
    for module in expected:
        status = by_key.get(module_key(module))
        if status is None:
            missing.append(module)
        elif status.strip().lower() in ACTIVE_STATUSES:
            active.append(module)
        else:
            inactive.append((module, status))
    return ModuleCheck(tuple(active), tuple(inactive), tuple(missing))


def read_modules(shell: RemoteShell, *, timeout: float = 120, **command_options) -> dict[str, str]:
    """Run module:list on the host and parse it; a failing command is an OpsError."""
    result = shell.run(module_list_command(**command_options), timeout=timeout)
    if result.exit_code != 0:
        raise OpsError(
            f"php artisan module:list exited {result.exit_code}",
            cause=_first_error_line(result.stderr) or result.stdout.strip()[-300:],
            hint="run it on the host: cd /var/www/html/freescout && sudo -u www-data php artisan "
            "module:list",
        )
    return parse_module_list(result.stdout)


def require_modules_active(
    shell: RemoteShell, expected: Sequence[str], **command_options
) -> ModuleCheck:
    """Raise OpsError naming every missing or inactive module; return the check when ok."""
    if not expected:
        return ModuleCheck((), (), ())  # a stack may install no modules (staging)
    check = check_modules(read_modules(shell, **command_options), expected)
    if not check.ok:
        raise OpsError(
            "not every configured FreeScout module is active",
            cause=check.describe(),
            hint="install the missing ones (php artisan freescout:module-install <alias>), or "
            "restore the post-install snapshot (scripts/restore.py)",
        )
    return check
