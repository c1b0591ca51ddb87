"""Wait until a host's SSH port answers with an SSH banner, with pauses, under a deadline (F6).

Run by the first provisioning step on the operator's machine, with the interpreter that runs
the Pulumi program:

    python -m freescout.wait_for_ssh HOST --port 22 --deadline 900

Why: "running" in the Lightsail API does not mean sshd listens. The command provider's own
connection retries have no pause between attempts, so a refused connection burns all of them
at once. This waits first: each attempt connects and reads the server's identification line
(RFC 4253 4.2: a line starting with `SSH-`; other lines may come before it). A refused
connection, a timeout, or an answer without a banner is retried after a growing pause until
the deadline; every failed attempt prints one progress line.

Giving up at the deadline exits non-zero with a message naming the host, the port and the
deadline. Its wording avoids the provider's transient-error phrases ("connection refused",
"i/o timeout", "handshake failed"), which the rebuild driver retries (operations/engine.py):
after the whole deadline, another `up` would only wait again.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from operations import exitcodes
from operations.errors import DeadlineExceeded, OpsError
from operations.retry import Backoff, Clock, poll

DEFAULT_PORT = 22
DEFAULT_DEADLINE_SECONDS = 900.0
# One attempt: the TCP connect and then reading the banner, each up to this long.
ATTEMPT_TIMEOUT_SECONDS = 10.0
BACKOFF = Backoff(first=2.0, factor=1.5, maximum=15.0)
# An SSH server sends its identification within a few lines; do not read forever.
MAX_BANNER_BYTES = 8192
# A probe never gets less time than this, even right at the deadline.
MIN_ATTEMPT_SECONDS = 0.2

Say = Callable[[str], None]


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt: the banner line when the port answered like SSH."""

    banner: str | None
    problem: str = ""
    """What went wrong, in words for the operator (empty on success)."""


def probe(host: str, port: int, timeout: float) -> Attempt:
    """Connect once and read the server's identification line; never raises on network errors."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return _read_banner(conn)
    except ConnectionRefusedError:
        return Attempt(None, "refused the connection (nothing listens yet)")
    except TimeoutError:
        return Attempt(None, f"did not answer within {timeout:.0f}s")
    except OSError as e:
        return Attempt(None, f"could not be reached ({e.strerror or type(e).__name__})")


def _read_banner(conn: socket.socket) -> Attempt:
    received = b""
    try:
        while len(received) < MAX_BANNER_BYTES:
            chunk = conn.recv(1024)
            if not chunk:
                break
            received += chunk
            for line in received.split(b"\n")[:-1]:
                if line.startswith(b"SSH-"):
                    return Attempt(line.rstrip(b"\r").decode("ascii", "replace"))
    except TimeoutError:
        if not received:
            return Attempt(None, "accepted the connection but sent no SSH banner in time")
    except ConnectionResetError:
        return Attempt(None, "dropped the connection before its banner")
    except OSError as e:
        return Attempt(None, f"failed while sending its banner ({type(e).__name__})")
    if received.startswith(b"SSH-"):  # a banner without its line end, then the close
        return Attempt(received.split(b"\r")[0].split(b"\n")[0].decode("ascii", "replace"))
    shown = received[:60].decode("ascii", "replace").strip() or "nothing"
    return Attempt(None, f"answered without an SSH banner (sent {shown!r})")


def wait(
    host: str,
    port: int = DEFAULT_PORT,
    *,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    attempt_timeout: float = ATTEMPT_TIMEOUT_SECONDS,
    backoff: Backoff = BACKOFF,
    clock: Clock | None = None,
    say: Say = print,
) -> str:
    """Wait until HOST:PORT answers with an SSH banner; return the banner line.

    Each failed attempt is reported through `say`, with the time used and the next pause.
    Raises DeadlineExceeded naming host, port and deadline when it gives up.
    """
    clock = clock or Clock()
    start = clock.now()
    where = f"{host}:{port}"
    attempts: list[Attempt] = []

    def once() -> str | None:
        remaining = deadline_seconds - (clock.now() - start)
        # An attempt never runs far past the deadline.
        outcome = probe(host, port, max(MIN_ATTEMPT_SECONDS, min(attempt_timeout, remaining)))
        attempts.append(outcome)
        return outcome.banner

    def on_wait(elapsed: float, pause: float) -> None:
        say(f"wait-for-ssh: {where} {attempts[-1].problem} (attempt {len(attempts)}, "
            f"{elapsed:.0f}s of {deadline_seconds:.0f}s); next try in {pause:.0f}s")

    try:
        banner = poll(once, what=f"SSH on {where}", deadline_seconds=deadline_seconds,
                      backoff=backoff, clock=clock, on_wait=on_wait)
    except DeadlineExceeded:
        last = attempts[-1].problem if attempts else "was not tried"
        raise DeadlineExceeded(
            f"gave up waiting for SSH on {where}: no SSH banner within the deadline of "
            f"{deadline_seconds:.0f}s ({len(attempts)} attempts; last: {where} {last})",
            hint=f"check that the instance is running and that port {port} is open in its "
            "Lightsail networking (public ports), then rerun `pulumi up` "
            "(or `python scripts/rebuild.py --resume RUN_ID`)",
        ) from None
    say(f"wait-for-ssh: {where} answers with {banner} after {len(attempts)} attempt(s), "
        f"{clock.now() - start:.0f}s")
    return banner


def build_parser() -> argparse.ArgumentParser:
    """The arguments of `python -m freescout.wait_for_ssh`."""
    parser = argparse.ArgumentParser(
        prog="python -m freescout.wait_for_ssh",
        description="Wait until HOST's SSH port answers with an SSH banner, pausing between "
        "attempts, under an overall deadline.",
        epilog=f"exit codes: {exitcodes.OK} SSH answers; {exitcodes.FAILED} gave up at the "
        f"deadline; {exitcodes.USAGE} bad arguments.",
    )
    parser.add_argument("host", help="address or name of the host")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default 22)")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_SECONDS,
                        help="give up after this many seconds (default 900)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not 0 < args.port < 65536 or args.deadline <= 0:
        print("error: --port must be 1-65535 and --deadline above 0", file=sys.stderr)
        return exitcodes.USAGE
    try:
        wait(args.host, args.port, deadline_seconds=args.deadline,
             say=lambda line: print(line, flush=True))
    except OpsError as e:
        print(e.render(), file=sys.stderr, flush=True)
        return e.exit_code
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
