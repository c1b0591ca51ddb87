"""The data check end to end: the real ssh adapter to a real sshd, which runs the real mysql
client against a real MariaDB whose `freescout` user's password is read from a file on the host.

The commands run through the real `sudo -n` (as root here, so the instance's sudoers policy for
`admin` is not proven), with the same nesting and quoting as on the instance. Not proven either:
Debian's default socket path, and the schema of a real FreeScout database (two plain tables here).
"""

from __future__ import annotations

import pytest

from operations.host_checks import (
    DataState,
    check_data,
    cloud_init_log_tail,
    data_check_command,
)
from tests import servers
from tests.conftest import find_tool, need
from tests.servers import MariaDbServer, SshServer

pytestmark = [pytest.mark.sshd, pytest.mark.mariadb]

# The real-server fixtures, imported explicitly.
sshd_server = servers.sshd_server
mariadb_server = servers.mariadb_server


@pytest.fixture
def host(sshd_server: SshServer, tmp_path):
    shell = sshd_server.shell(tmp_path / "known_hosts")
    shell.pin_host_keys(sshd_server.host_keys())
    return shell


@pytest.fixture(autouse=True)
def real_sudo() -> None:
    need(find_tool("sudo") is not None, "sudo", "apt-get install sudo (tools/setup.sh does)")


def run_check(shell, db: MariaDbServer, **overrides):
    options = {
        "password_file": str(db.password_file),
        "mysql_options": db.client_options,
    }
    options.update(overrides)
    return check_data(shell, **options)


@pytest.mark.parametrize(
    ("conversations", "users", "state"),
    [
        (0, 1, DataState.EMPTY),
        (4, 1, DataState.HAS_DATA),
        (0, 2, DataState.HAS_DATA),
    ],
)
def test_counts(host, mariadb_server: MariaDbServer, conversations, users, state):
    mariadb_server.set_contents(conversations=conversations, users=users)
    check = run_check(host, mariadb_server)
    assert check.state is state, check.detail
    assert (check.conversations, check.users) == (conversations, users)


def test_missing_table_is_unknown(host, mariadb_server: MariaDbServer):
    mariadb_server.set_contents(conversations=0, users=1)
    mariadb_server.sql("DROP TABLE conversations;", database="freescout")
    check = run_check(host, mariadb_server)
    assert check.state is DataState.UNKNOWN
    assert "ERROR 1146" in check.detail
    assert check.blocks_destroy


def test_wrong_password_is_unknown(host, mariadb_server: MariaDbServer, tmp_path):
    mariadb_server.set_contents(conversations=0, users=1)
    wrong = tmp_path / "wrong_pass"
    wrong.write_text("not-the-password\n")
    check = run_check(host, mariadb_server, password_file=str(wrong))
    assert check.state is DataState.UNKNOWN
    assert "ERROR 1045" in check.detail and "not-the-password" not in check.detail


def test_missing_password_file_is_unknown_not_an_empty_password(
    host, mariadb_server: MariaDbServer, tmp_path
):
    mariadb_server.set_contents(conversations=0, users=1)
    check = run_check(host, mariadb_server, password_file=str(tmp_path / "absent"))
    assert check.state is DataState.UNKNOWN
    assert "No such file" in check.detail


def test_password_is_in_no_argument(mariadb_server: MariaDbServer):
    password = mariadb_server.password_file.read_text().strip()
    command = data_check_command(password_file=str(mariadb_server.password_file))
    assert password not in command


def test_log_tail_over_ssh(host, tmp_path):
    log = tmp_path / "cloud-init-output.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = cloud_init_log_tail(host, lines=3, path=str(log), privilege=("sudo", "-n"))
    assert tail == "line 97\nline 98\nline 99\n"
