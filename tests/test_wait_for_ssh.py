"""freescout.wait_for_ssh against real TCP servers on 127.0.0.1 (and the real test sshd).

What this proves: the wait's behaviour on a real socket for each shape of F6 — a port that
refuses (retried with growing pauses, then a give-up naming host, port and deadline), a port
that starts listening late, a server that answers without an SSH banner or says nothing, a
server that sends other lines before its banner, and OpenSSH's own banner; and that the exact
command line the program builds (`sys.executable -m freescout.wait_for_ssh ...`) runs under
/bin/sh. What it does not prove: a Lightsail host's boot timing (the deadline is a judgement).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from freescout import scripts
from freescout.wait_for_ssh import Attempt, main, probe, wait
from operations import exitcodes
from operations.errors import DeadlineExceeded
from operations.retry import Backoff
from tests import servers
from tests.servers import LOOPBACK, free_port
from tests.sim_clock import SimulatedClock

sshd_server = servers.sshd_server
BANNER = b"SSH-2.0-test\r\n"
# The provider's transient-error phrases (operations/engine.py): a final give-up must not
# read as one of them, or the rebuild driver would wait all over again.
TRANSIENT_PHRASES = (
    "connection refused",
    "i/o timeout",
    "handshake failed",
    "connection reset by peer",
)


class TcpServer:
    """A TCP server on 127.0.0.1 that sends `payload` to each client, then holds or closes."""

    def __init__(self, payload: bytes, *, hold: float = 0.0, port: int = 0) -> None:
        self.payload = payload
        self.hold = hold
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, port))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                if self.payload:
                    conn.sendall(self.payload)
                self._stop.wait(self.hold)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@contextmanager
def tcp_server(payload: bytes, **kwargs) -> Iterator[TcpServer]:
    server = TcpServer(payload, **kwargs)
    try:
        yield server
    finally:
        server.close()


def test_a_banner_answers_at_the_first_attempt() -> None:
    said: list[str] = []
    with tcp_server(BANNER) as server:
        banner = wait(LOOPBACK, server.port, deadline_seconds=5, say=said.append)
    assert banner == "SSH-2.0-test"
    assert server.connections == 1
    assert said == [
        f"wait-for-ssh: 127.0.0.1:{server.port} answers with SSH-2.0-test after 1 attempt(s), 0s"
    ], said


def test_lines_before_the_banner_are_skipped() -> None:
    # RFC 4253 4.2: a server may send other lines before its identification string.
    with tcp_server(b"Debian GNU/Linux\r\nSSH-2.0-OpenSSH_9.2p1 Debian-2\r\n") as server:
        assert probe(LOOPBACK, server.port, 2) == Attempt("SSH-2.0-OpenSSH_9.2p1 Debian-2")


def test_a_refused_port_is_retried_with_growing_pauses_then_given_up() -> None:
    port = free_port()  # nothing listens: the kernel refuses at once
    clock, said = SimulatedClock(start=1000.0), []
    with pytest.raises(DeadlineExceeded) as caught:
        wait(LOOPBACK, port, deadline_seconds=30, clock=clock, say=said.append)
    assert clock.pauses == [2.0, 3.0, 4.5, 6.75, 10.125, pytest.approx(3.625)], clock.pauses
    assert len(said) == 6, said
    assert all("refused the connection" in line for line in said), said
    assert said[0] == (
        f"wait-for-ssh: 127.0.0.1:{port} refused the connection (nothing listens "
        "yet) (attempt 1, 0s of 30s); next try in 2s"
    )
    error = caught.value
    assert error.exit_code == exitcodes.FAILED
    assert error.message.startswith(f"gave up waiting for SSH on 127.0.0.1:{port}: "), error.message
    assert "within the deadline of 30s (7 attempts; last: " in error.message, error.message
    assert "refused the connection" in error.message
    assert f"port {port} is open" in (error.hint or "")
    rendered = error.render().lower()
    assert not [p for p in TRANSIENT_PHRASES if p in rendered], rendered


def test_a_refused_port_with_real_time_waits_out_the_deadline() -> None:
    port = free_port()
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        wait(
            LOOPBACK,
            port,
            deadline_seconds=0.6,
            say=said.append,
            backoff=Backoff(first=0.05, factor=2, maximum=0.2),
        )
    took = time.monotonic() - started
    assert 0.6 <= took < 2.0, took
    assert len(said) >= 3, said


def test_sshd_that_starts_late_is_found() -> None:
    port = free_port()
    started: list[TcpServer] = []
    clock = SimulatedClock(start=1000.0)
    real_sleep = clock.sleep

    def sleep(seconds: float) -> None:
        # sshd comes up during the second pause, on the port that refused so far.
        if len(clock.pauses) == 1:
            started.append(TcpServer(BANNER, port=port))
        real_sleep(seconds)

    clock.sleep = sleep
    said: list[str] = []
    try:
        banner = wait(LOOPBACK, port, deadline_seconds=900, clock=clock, say=said.append)
    finally:
        for server in started:
            server.close()
    assert banner == "SSH-2.0-test"
    assert clock.pauses == [2.0, 3.0]
    assert [line.split(" (attempt")[0] for line in said[:2]] == [
        f"wait-for-ssh: 127.0.0.1:{port} refused the connection (nothing listens yet)"
    ] * 2
    assert (
        said[2] == f"wait-for-ssh: 127.0.0.1:{port} answers with SSH-2.0-test after 3 "
        "attempt(s), 5s"
    )


def test_a_server_without_a_banner_is_retried_then_given_up() -> None:
    clock = SimulatedClock(start=1000.0)
    with tcp_server(b"HTTP/1.1 400 Bad Request\r\n\r\n") as server:
        with pytest.raises(DeadlineExceeded) as caught:
            wait(LOOPBACK, server.port, deadline_seconds=5, clock=clock, say=lambda _: None)
        attempts = len(clock.pauses) + 1
        assert server.connections == attempts == 3, (server.connections, clock.pauses)
    assert (
        "answered without an SSH banner (sent 'HTTP/1.1 400 Bad Request')" in caught.value.message
    ), caught.value.message
    assert f"127.0.0.1:{server.port}" in caught.value.message
    assert "deadline of 5s" in caught.value.message


def test_a_silent_server_times_out_each_attempt() -> None:
    with tcp_server(b"", hold=5) as server:
        outcome = probe(LOOPBACK, server.port, 0.3)
    assert outcome == Attempt(None, "accepted the connection but sent no SSH banner in time")


@pytest.mark.sshd
def test_real_openssh_banner(sshd_server) -> None:
    banner = wait(sshd_server.host, sshd_server.port, deadline_seconds=10, say=lambda _: None)
    assert banner.startswith("SSH-2.0-OpenSSH_"), banner


def run_sh(command: str, cwd) -> subprocess.CompletedProcess[str]:
    # As an operator's shell with the project's virtualenv activated (the README's set-up).
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def test_the_programs_command_line_runs_under_sh(tmp_path) -> None:
    # The same builder the program uses; cwd is not the project, as for any operator's shell.
    with tcp_server(BANNER) as server:
        line = scripts.python_module_command(
            "freescout.wait_for_ssh", LOOPBACK, "--port", str(server.port), "--deadline", "5"
        )
        done = run_sh(line, tmp_path)
    assert done.returncode == exitcodes.OK, done.stderr
    assert f"127.0.0.1:{server.port} answers with SSH-2.0-test" in done.stdout


def test_the_command_line_gives_up_with_the_message_and_exit_code(tmp_path) -> None:
    port = free_port()
    line = scripts.python_module_command(
        "freescout.wait_for_ssh", LOOPBACK, "--port", str(port), "--deadline", "1"
    )
    done = run_sh(line, tmp_path)
    assert done.returncode == exitcodes.FAILED, (done.stdout, done.stderr)
    assert (
        f"error: gave up waiting for SSH on 127.0.0.1:{port}: no SSH banner within the "
        "deadline of 1s" in done.stderr
    ), done.stderr
    assert "  next: check that the instance is running" in done.stderr
    assert f"wait-for-ssh: 127.0.0.1:{port} refused the connection" in done.stdout, done.stdout


@pytest.mark.parametrize("argv", [["h", "--port", "0"], ["h", "--deadline", "0"]])
def test_bad_arguments_are_a_usage_error(argv, capsys) -> None:
    assert main(argv) == exitcodes.USAGE
    assert "--port must be 1-65535" in capsys.readouterr().err
