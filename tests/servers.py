"""Real servers on 127.0.0.1 for tests: OpenSSH's sshd and MariaDB, in temp dirs, stopped after use.

Import the fixtures into a test module explicitly:

    from tests import servers

    sshd_server = servers.sshd_server
    mariadb_server = servers.mariadb_server

`sshd_server` and `mariadb_server` are session-scoped (MariaDB's first start takes a few seconds);
`fresh_sshd` is a private sshd per test, for tests that change its host key. Both need root (sshd's
privilege separation; the data check logs in as root) and Debian's openssh-server and
mariadb-server: when missing, `need()` skips, or fails under CI=true.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from operations.ports import HostKey
from operations.retry import Backoff, Clock, poll
from operations.ssh import OpenSshShell
from tests.conftest import find_tool, need

LOOPBACK = "127.0.0.1"
FAST = Backoff(first=0.05, factor=1.5, maximum=0.5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen | None) -> None:
    """Stop one process we started: TERM, then KILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def keygen(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def read_host_key(public_key_file: Path) -> HostKey:
    """A `.pub` file as the HostKey Lightsail would report for it."""
    algorithm, blob = public_key_file.read_text().split()[:2]
    return HostKey(algorithm=algorithm, public_key=blob)


# ---------------------------------------------------------------- sshd


@dataclass
class SshServer:
    """One sshd on 127.0.0.1:<port> that accepts root with `client_key`."""

    workdir: Path
    sshd: str
    port: int = field(default_factory=free_port)
    host: str = LOOPBACK
    user: str = "root"
    process: subprocess.Popen | None = None

    @property
    def host_key(self) -> Path:
        return self.workdir / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.workdir / "client_ed25519"

    @property
    def log(self) -> Path:
        return self.workdir / "sshd.log"

    def host_keys(self) -> list[HostKey]:
        return [read_host_key(self.host_key.with_name(self.host_key.name + ".pub"))]

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        keygen(self.host_key)
        keygen(self.client_key)
        authorized = self.workdir / "authorized_keys"
        authorized.write_text(self.client_key.with_name(self.client_key.name + ".pub").read_text())
        authorized.chmod(0o600)
        config = f"""\
Port {self.port}
ListenAddress {self.host}
HostKey {self.host_key}
PidFile {self.workdir / "sshd.pid"}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
MaxStartups 50
LogLevel VERBOSE
"""
        (self.workdir / "sshd_config").write_text(config)
        # sshd insists on its privilege-separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.sshd, "-D", "-e", "-f", str(self.workdir / "sshd_config")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

        def ready() -> bool | None:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"sshd exited at start-up:\n{self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as conn:
                    conn.settimeout(2)
                    return True if conn.recv(64).startswith(b"SSH-") else None
            except OSError:
                return None

        poll(ready, what="the test sshd", deadline_seconds=15, backoff=FAST)

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def rebuild(self) -> None:
        """What a rebuilt instance looks like from outside: same address, new host key."""
        self.stop()
        keygen(self.host_key)
        self.start()

    def shell(self, known_hosts: Path, **options) -> OpenSshShell:
        options.setdefault("connect_timeout", 5)
        options.setdefault("backoff", FAST)
        return OpenSshShell(
            host=self.host,
            port=self.port,
            user=self.user,
            identity_file=self.client_key,
            known_hosts=known_hosts,
            **options,
        )


def _need_sshd() -> str:
    sshd = find_tool("sshd")
    need(sshd is not None, "the OpenSSH server (/usr/sbin/sshd)", "apt-get install openssh-server")
    need(shutil.which("ssh") is not None, "the OpenSSH client", "apt-get install openssh-client")
    need(os.geteuid() == 0, "root (the test sshd needs it)", "run the tests as root, as CI does")
    assert sshd is not None
    return sshd


def _run_sshd(workdir: Path) -> Iterator[SshServer]:
    server = SshServer(workdir=workdir, sshd=_need_sshd())
    server.prepare()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory) -> Iterator[SshServer]:
    """A session-wide sshd; do not change its host key (use fresh_sshd for that)."""
    yield from _run_sshd(tmp_path_factory.mktemp("sshd"))


@pytest.fixture
def fresh_sshd(tmp_path) -> Iterator[SshServer]:
    """A private sshd for one test (its host key may be rotated with .rebuild())."""
    yield from _run_sshd(tmp_path / "sshd")


# ---------------------------------------------------------------- MariaDB


@dataclass
class MariaDbServer:
    """A mariadbd on a temp datadir, socket and port, with a `freescout` database and user whose
    password is in `password_file` (as /root/.freescout_db_pass on the instance)."""

    workdir: Path
    mariadbd: str
    install_db: str
    client: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        return self.workdir / "mysqld.sock"

    @property
    def password_file(self) -> Path:
        return self.workdir / "freescout_db_pass"

    @property
    def log(self) -> Path:
        return self.workdir / "mariadb.log"

    @property
    def client_options(self) -> tuple[str, ...]:
        """What the data check must add to `mysql` to reach this server."""
        return (f"--socket={self.socket_path}",)

    def start(self) -> None:
        datadir = self.workdir / "data"
        datadir.mkdir(parents=True)
        (self.workdir / "tmp").mkdir()
        installed = subprocess.run(
            [
                self.install_db,
                "--no-defaults",
                f"--datadir={datadir}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if installed.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{installed.stderr[-2000:]}")
        self.process = subprocess.Popen(
            [
                self.mariadbd,
                "--no-defaults",
                f"--datadir={datadir}",
                f"--socket={self.socket_path}",
                f"--port={self.port}",
                f"--bind-address={LOOPBACK}",
                "--user=root",
                f"--pid-file={self.workdir / 'mariadb.pid'}",
                f"--log-error={self.log}",
                f"--tmpdir={self.workdir / 'tmp'}",
                "--skip-log-bin",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def ready() -> bool | None:
            if self.process is not None and self.process.poll() is not None:
                log = self.log.read_text()[-2000:] if self.log.exists() else ""
                raise RuntimeError(f"mariadbd exited at start-up:\n{log}")
            if not self.socket_path.exists():
                return None
            ping = subprocess.run(
                [
                    self.client,
                    "--no-defaults",
                    f"--socket={self.socket_path}",
                    "-u",
                    "root",
                    "-e",
                    "SELECT 1",
                ],
                capture_output=True,
                check=False,
            )
            return True if ping.returncode == 0 else None

        poll(ready, what="the test MariaDB", deadline_seconds=60, backoff=FAST, clock=Clock())
        password = secrets.token_urlsafe(18)
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        # The password travels on stdin, as SQL, never in an argument.
        self.sql(
            "CREATE DATABASE freescout;"
            f"CREATE USER 'freescout'@'localhost' IDENTIFIED BY '{password}';"
            "GRANT ALL PRIVILEGES ON freescout.* TO 'freescout'@'localhost';"
        )

    def sql(self, statements: str, database: str | None = None) -> str:
        """Run SQL as MariaDB's root (socket authentication as the Unix root user)."""
        argv = [
            self.client,
            "--no-defaults",
            f"--socket={self.socket_path}",
            "-u",
            "root",
            "-N",
            "-B",
        ]
        if database:
            argv.append(database)
        done = subprocess.run(argv, input=statements, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"SQL failed: {done.stderr.strip()}")
        return done.stdout

    def set_contents(self, *, conversations: int, users: int) -> None:
        """Recreate both tables with that many rows (fresh install: 1 user, 0 conversations)."""
        rows_c = ",".join(f"('subject {i}')" for i in range(conversations))
        rows_u = ",".join(f"('user{i}@example.test')" for i in range(users))
        self.sql(
            "DROP TABLE IF EXISTS conversations; DROP TABLE IF EXISTS users;"
            "CREATE TABLE conversations (id INT AUTO_INCREMENT PRIMARY KEY, subject VARCHAR(100));"
            "CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100));"
            + (f"INSERT INTO conversations (subject) VALUES {rows_c};" if conversations else "")
            + (f"INSERT INTO users (email) VALUES {rows_u};" if users else ""),
            database="freescout",
        )

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory) -> Iterator[MariaDbServer]:
    """A session-wide MariaDB with the `freescout` database, user and password file."""
    mariadbd = find_tool("mariadbd")
    install_db = find_tool("mariadb-install-db")
    client = find_tool("mariadb") or find_tool("mysql")
    need(
        None not in (mariadbd, install_db, client),
        "MariaDB (mariadbd, mariadb-install-db, mariadb client)",
        "apt-get install mariadb-server mariadb-client",
    )
    need(os.geteuid() == 0, "root (the test MariaDB runs as root)", "run the tests as root")
    assert mariadbd and install_db and client
    # A short path: the Unix socket path must stay under ~100 characters.
    server = MariaDbServer(
        workdir=tmp_path_factory.mktemp("mdb"),
        mariadbd=mariadbd,
        install_db=install_db,
        client=client,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
