"""ports.RemoteShell over the OpenSSH client, host keys pinned in a known_hosts file of our own.

Every connection runs with BatchMode=yes and StrictHostKeyChecking=yes against the tool's own
known_hosts (the user's and the system's files are not read, nor is ~/.ssh/config): a host is
trusted only through `pin_host_keys`, fed with the keys that Lightsail's
GetInstanceAccessDetails reports.
Host-key checking is never switched off and never set to accept-new. Input for a remote command
(secrets included) goes on standard input, never into the arguments.

ssh itself exits 255 when it fails; its message on stderr tells a transient failure (refused, timed
out, reset during the handshake) from a permanent one (wrong key, changed host key).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import socket
import struct
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from operations.errors import DeadlineExceeded, OpsError, TransientError
from operations.ports import CommandResult, HostKey, RemoteShell
from operations.retry import Backoff, Clock, poll

SSH_FAILED = 255
WAIT_BACKOFF = Backoff(first=2.0, factor=1.5, maximum=15.0)

# ---------------------------------------------------------------- failure classification


class SshFailure(Enum):
    """What went wrong when ssh itself failed (exit 255)."""

    CONNECT = "connect"  # refused, timed out, reset or closed during the handshake: transient
    AUTH = "auth"  # the server refused our user/key
    HOST_KEY_CHANGED = "host-key-changed"  # the host offered a key other than the pinned one
    HOST_KEY_UNKNOWN = "host-key-unknown"  # no key pinned for this host
    KEY_FILE = "key-file"  # the identity file is missing, unreadable or unusable
    RESOLVE = "resolve"  # the host name does not resolve


_PATTERNS: list[tuple[SshFailure, re.Pattern[str]]] = [
    (
        SshFailure.HOST_KEY_CHANGED,
        re.compile(
            r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed"
            r"|host key .* does not match",
            re.I,
        ),
    ),
    (
        SshFailure.HOST_KEY_UNKNOWN,
        re.compile(r"No \S+ host key is known for|Host key verification failed", re.I),
    ),
    (
        SshFailure.KEY_FILE,
        re.compile(
            r"UNPROTECTED PRIVATE KEY FILE|Load key .*: (invalid format|bad permissions"
            r"|Permission denied)|no such identity",
            re.I,
        ),
    ),
    (SshFailure.RESOLVE, re.compile(r"Could not resolve hostname", re.I)),
    (
        SshFailure.AUTH,
        re.compile(
            r"Permission denied \((publickey|password|keyboard-interactive)"
            r"|Too many authentication failures|unable to authenticate",
            re.I,
        ),
    ),
    (
        SshFailure.CONNECT,
        re.compile(
            r"Connection refused|Connection timed out|Operation timed out|timed out during banner"
            r"|Connection reset|Connection closed by|closed by remote host|No route to host"
            r"|Network is unreachable|kex_exchange_identification|ssh_exchange_identification"
            r"|Broken pipe|handshake failed|i/o timeout|connection lost|Connection to .* closed",
            re.I,
        ),
    ),
]

# Failures worth a retry after a pause, as they appear in ssh's and in Go's (pulumi-command) text.
_TRANSIENT_TEXT = re.compile(
    r"handshake failed|connection refused|connection reset by peer|i/o timeout"
    r"|connection timed out|no route to host|kex_exchange_identification|closed by remote host",
    re.I,
)


def classify_ssh_failure(exit_code: int, stderr: str) -> SshFailure | None:
    """The kind of ssh's own failure, or None when ssh did not fail (any other exit code, or a
    255 whose message is not one of ssh's: then the remote command itself exited 255)."""
    if exit_code != SSH_FAILED:
        return None
    for kind, pattern in _PATTERNS:
        if pattern.search(stderr):
            return kind
    return None


def is_transient_ssh_text(text: str) -> bool:
    """True when an error text (ssh's, or the engine's from pulumi-command) reads like an SSH
    connection that may work after a pause: the sshd restart of cloud-init, a booting host."""
    if classify_ssh_failure(SSH_FAILED, text) in {
        SshFailure.HOST_KEY_CHANGED,
        SshFailure.HOST_KEY_UNKNOWN,
        SshFailure.KEY_FILE,
    }:
        return False
    return bool(_TRANSIENT_TEXT.search(text))


class SshConnectError(TransientError):
    """ssh could not reach the host (yet): refused, timed out, reset during the handshake."""


class SshAuthError(OpsError):
    """The host refused the user or key."""


class HostKeyError(OpsError):
    """The host's key is not the pinned one, or no key is pinned for it."""


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip() and "@@@@" not in line]
    return " | ".join(lines[-count:])


# ---------------------------------------------------------------- known_hosts pinning

_ALGORITHM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._+-]*$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,3}$")


def known_hosts_pattern(host: str, port: int = 22) -> str:
    """How known_hosts names a host: `host`, or `[host]:port` off port 22."""
    return host if port == 22 else f"[{host}]:{port}"


def _check_host(host: str) -> str:
    if not host or host.startswith("-") or re.search(r"[\s,\[\]@/]", host):
        raise OpsError(f"not a usable host name or address: {host!r}")
    return host


def normalize_host_key(key: HostKey) -> HostKey:
    """Check one reported key and return it as (algorithm, base64 blob).

    Accepts a bare base64 blob or `algorithm blob [comment]`. The blob must decode and name the
    same algorithm inside it, so nothing but a real key can be written into known_hosts.
    """
    algorithm = key.algorithm.strip()
    if not _ALGORITHM.match(algorithm):
        raise OpsError(f"reported host key algorithm is not valid: {algorithm!r}")
    parts = key.public_key.strip().split()
    if len(parts) >= 2 and parts[0] == algorithm:
        parts = parts[1:2]
    if len(parts) != 1 or not _BASE64.match(parts[0]):
        raise OpsError(f"reported {algorithm} host key is not a base64 key blob")
    blob = parts[0]
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        inner = raw[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError) as error:
        raise OpsError(f"reported {algorithm} host key does not decode") from error
    if inner != algorithm:
        raise OpsError(f"reported host key says {algorithm!r} but its blob holds {inner!r}")
    return HostKey(algorithm=algorithm, public_key=blob)


def pin_host_keys(
    known_hosts: Path,
    host: str,
    keys: Sequence[HostKey],
    *,
    port: int = 22,
    ssh_keygen: str = "ssh-keygen",
) -> None:
    """Make `keys` the only keys trusted for `host` in the tool's known_hosts.

    The old entries of that host alone are removed with `ssh-keygen -R` (a rebuilt instance has a
    new key); entries of every other host are kept. The file is rewritten atomically, mode 0600.
    """
    _check_host(host)
    checked = [normalize_host_key(key) for key in keys]
    if not checked:
        raise OpsError(
            f"no host keys to pin for {host}",
            hint="Lightsail reports host keys once the instance has booted: wait, then rerun",
        )
    known_hosts = Path(known_hosts)
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not known_hosts.exists():
        known_hosts.touch(mode=0o600)
    pattern = known_hosts_pattern(host, port)
    removed = subprocess.run(
        [ssh_keygen, "-R", pattern, "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        check=False,
    )
    if removed.returncode != 0:
        raise OpsError(
            f"could not forget the old host key of {pattern} in {known_hosts}",
            cause=_last_lines(removed.stderr),
        )
    kept = known_hosts.read_text()
    if kept and not kept.endswith("\n"):
        kept += "\n"
    added = "".join(f"{pattern} {key.algorithm} {key.public_key}\n" for key in checked)
    fd, temp = tempfile.mkstemp(dir=known_hosts.parent, prefix=".known_hosts.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(kept + added)
        os.chmod(temp, 0o600)
        os.replace(temp, known_hosts)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- the shell


@dataclass
class _WaitState:
    port_ok: bool = False
    auth_failures: int = 0
    last: str = "no answer yet"


class OpenSshShell:
    """Runs commands on one host with the system's `ssh`, trusting only pinned host keys.

    `known_hosts` is the tool's own file (for example `<tool dir>/known_hosts`).
    """

    def __init__(
        self,
        *,
        host: str,
        user: str,
        identity_file: Path | str,
        known_hosts: Path | str,
        port: int = 22,
        connect_timeout: int = 10,
        ssh_binary: str = "ssh",
        ssh_keygen: str = "ssh-keygen",
        clock: Clock | None = None,
        backoff: Backoff = WAIT_BACKOFF,
        auth_attempts: int = 4,
        on_progress: Callable[[str], None] | None = None,
    ):
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", user or ""):
            raise OpsError(f"not a usable SSH user name: {user!r}")
        self.host = _check_host(host)
        self.user = user
        self.port = int(port)
        self.identity_file = Path(identity_file)
        self.known_hosts = Path(known_hosts)
        self.connect_timeout = connect_timeout
        self._ssh = ssh_binary
        self._ssh_keygen = ssh_keygen
        self._clock = clock or Clock()
        self._backoff = backoff
        self._auth_attempts = auth_attempts
        self._on_progress = on_progress

    @property
    def target(self) -> str:
        return f"{self.user}@{known_hosts_pattern(self.host, self.port)}"

    def argv(self, command: str) -> list[str]:
        """The ssh command line for `command` (no secrets ever go here: use stdin)."""
        options = {
            "BatchMode": "yes",
            "StrictHostKeyChecking": "yes",
            "UserKnownHostsFile": str(self.known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "UpdateHostKeys": "no",  # the pinned keys come from Lightsail, not from the host
            "CheckHostIP": "no",
            "HashKnownHosts": "no",
            "IdentitiesOnly": "yes",
            "IdentityFile": str(self.identity_file),
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "ConnectTimeout": str(self.connect_timeout),
            "ConnectionAttempts": "1",  # retries are ours, with pauses and a deadline
            "ServerAliveInterval": "15",
            "ServerAliveCountMax": "4",
            "ControlMaster": "no",
            "ControlPath": "none",
            "ForwardAgent": "no",
            "ClearAllForwardings": "yes",
        }
        args = [self._ssh, "-F", "none", "-T"]
        for name, value in options.items():
            args += ["-o", f"{name}={value}"]
        return [*args, "-p", str(self.port), "-l", self.user, "--", self.host, command]

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout: float = 120
    ) -> CommandResult:
        """Run `command` on the host; raises typed errors when ssh itself failed.

        SshConnectError (transient), SshAuthError, HostKeyError, OpsError (key file, name); a
        remote command's own exit code, whatever it is, comes back in the result.
        """
        try:
            completed = subprocess.run(
                self.argv(command),
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise SshConnectError(
                f"command on {self.target} did not finish within {timeout:.0f}s",
                hint="the host may be rebooting or overloaded; rerun with --resume",
            ) from error
        except FileNotFoundError as error:
            raise OpsError(
                f"the ssh client was not found ({self._ssh})",
                hint="install OpenSSH's client (apt-get install openssh-client)",
            ) from error
        result = CommandResult(
            exit_code=completed.returncode,
            stdout=completed.stdout.decode("utf-8", "replace"),
            stderr=completed.stderr.decode("utf-8", "replace"),
        )
        self._raise_for_ssh_failure(result)
        return result

    def _raise_for_ssh_failure(self, result: CommandResult) -> None:
        kind = classify_ssh_failure(result.exit_code, result.stderr)
        if kind is None:
            return
        detail = _last_lines(result.stderr)
        if kind is SshFailure.CONNECT:
            raise SshConnectError(f"could not connect to {self.target}", cause=detail)
        if kind is SshFailure.AUTH:
            raise SshAuthError(
                f"{self.target} refused the login of {self.user!r} with key {self.identity_file}",
                cause=detail,
                hint="check the SSH user (Lightsail reports it: admin on Debian) and the key path",
            )
        if kind is SshFailure.HOST_KEY_CHANGED:
            raise HostKeyError(
                f"the host key of {known_hosts_pattern(self.host, self.port)} does not match the "
                f"key pinned in {self.known_hosts}",
                cause="the host is not the instance Lightsail reported, or the pin is stale",
                hint=(
                    "re-pin from Lightsail (GetInstanceAccessDetails) with pin_host_keys; never "
                    "turn host-key checking off"
                ),
            )
        if kind is SshFailure.HOST_KEY_UNKNOWN:
            raise HostKeyError(
                f"no host key of {known_hosts_pattern(self.host, self.port)} is pinned in "
                f"{self.known_hosts}",
                cause=detail,
                hint="pin the keys Lightsail reports for the instance first (pin_host_keys)",
            )
        if kind is SshFailure.KEY_FILE:
            raise OpsError(
                f"the SSH key {self.identity_file} cannot be used",
                cause=detail,
                hint=f"check the path, and chmod 600 {self.identity_file}",
            )
        raise OpsError(f"cannot resolve {self.host}", cause=detail)

    def pin_host_keys(self, keys: Sequence[HostKey]) -> None:
        """Pin `keys` for this shell's host and port (see module-level pin_host_keys)."""
        pin_host_keys(
            self.known_hosts, self.host, keys, port=self.port, ssh_keygen=self._ssh_keygen
        )

    # ------------------------------------------------------------ waiting for a fresh host

    def _port_answers(self, timeout: float) -> str | None:
        """None when an SSH server answers with its banner, else why not."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as conn:
                conn.settimeout(timeout)
                banner = conn.recv(256)
        except OSError as error:
            return error.strerror or type(error).__name__
        if not banner.startswith(b"SSH-"):
            return "the port answers but not with an SSH banner"
        return None

    def wait_until_reachable(
        self,
        deadline_seconds: float,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        """Wait until port 22 answers and a trivial command runs, under one overall deadline.

        Refused connections and timeouts are retried with pauses until the deadline. An
        authentication failure is retried only `auth_attempts` times (cloud-init may still be
        installing the key), then reported as "wrong user or key". A host-key mismatch fails at
        once.
        """
        progress = on_progress or self._on_progress
        state = _WaitState()
        start = self._clock.now()

        def probe() -> bool | None:
            remaining = max(1.0, deadline_seconds - (self._clock.now() - start))
            if not state.port_ok:
                why = self._port_answers(min(float(self.connect_timeout), remaining))
                if why is not None:
                    state.last = f"port {self.port}: {why}"
                    return None
                state.port_ok = True
            try:
                result = self.run("true", timeout=min(self.connect_timeout + 20.0, remaining))
            except SshConnectError as error:
                state.last = error.cause or error.message
                state.port_ok = False  # sshd restarting: look at the port again first
                return None
            except SshAuthError as error:
                state.auth_failures += 1
                state.last = error.cause or error.message
                if state.auth_failures >= self._auth_attempts:
                    raise SshAuthError(
                        f"wrong user or key: {self.host} refused user {self.user!r} with key "
                        f"{self.identity_file} {state.auth_failures} times",
                        cause=error.cause,
                        hint=(
                            "check the user Lightsail reports for the instance (admin on Debian) "
                            "and the key pair's private key file, then rerun with --resume"
                        ),
                    ) from error
                return None
            if result.exit_code != 0:
                raise OpsError(
                    f"{self.target} accepted the login but `true` exited {result.exit_code}",
                    cause=_last_lines(result.stderr),
                )
            return True

        def waiting(elapsed: float, pause: float) -> None:
            if progress:
                progress(f"waiting for SSH on {self.target}: {elapsed:.0f}s so far ({state.last})")

        try:
            poll(
                probe,
                what=f"SSH on {self.target}",
                deadline_seconds=deadline_seconds,
                backoff=self._backoff,
                clock=self._clock,
                on_wait=waiting,
            )
        except DeadlineExceeded as error:
            raise DeadlineExceeded(
                f"{self.target} was not reachable over SSH within {deadline_seconds:.0f}s",
                cause=state.last,
                hint=(
                    "check the instance and its firewall (port 22) in the Lightsail console, "
                    "then rerun with --resume"
                ),
            ) from error


def _implements_port(adapter: OpenSshShell) -> RemoteShell:
    return adapter  # mypy checks here that the adapter satisfies ports.RemoteShell
