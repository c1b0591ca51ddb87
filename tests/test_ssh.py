"""The OpenSSH adapter against a real sshd on 127.0.0.1, plus its pure failure classifier.

Real here: the ssh client, sshd, ssh-keygen, known_hosts handling, key pinning and the messages
ssh prints. Not proven here: Lightsail's own sshd restart timing during cloud-init, network
timeouts across the internet, and that GetInstanceAccessDetails reports the keys the instance
really serves (the pinned keys come from the test sshd's own .pub file).
"""

from __future__ import annotations

import socket

import pytest

from operations.errors import DeadlineExceeded, OpsError
from operations.ports import HostKey
from operations.retry import Backoff
from operations.ssh import (
    HostKeyError,
    OpenSshShell,
    SshAuthError,
    SshConnectError,
    SshFailure,
    classify_ssh_failure,
    is_transient_ssh_text,
    known_hosts_pattern,
    normalize_host_key,
    pin_host_keys,
)
from tests import servers
from tests.servers import SshServer, keygen, read_host_key

# The real-server fixtures, imported explicitly.
sshd_server = servers.sshd_server
fresh_sshd = servers.fresh_sshd

pytestmark = pytest.mark.sshd

# A real ed25519 public key blob (from ssh-keygen), for pure tests of the pinning format.
ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


# ------------------------------------------------------------------ pure classification


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("ssh: connect to host 203.0.113.10 port 22: Connection refused", SshFailure.CONNECT),
        ("ssh: connect to host 203.0.113.10 port 22: Connection timed out", SshFailure.CONNECT),
        (
            "kex_exchange_identification: read: Connection reset by peer\r\n"
            "Connection reset by 203.0.113.10 port 22",
            SshFailure.CONNECT,
        ),
        ("kex_exchange_identification: Connection closed by remote host", SshFailure.CONNECT),
        ("admin@203.0.113.10: Permission denied (publickey).", SshFailure.AUTH),
        (
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            "Host key verification failed.",
            SshFailure.HOST_KEY_CHANGED,
        ),
        (
            "No ED25519 host key is known for 203.0.113.10 and you have requested strict "
            "checking.\nHost key verification failed.",
            SshFailure.HOST_KEY_UNKNOWN,
        ),
        (
            "No ED25519 host key is known for 10.0.0.1.\nHost key verification failed.",
            SshFailure.HOST_KEY_UNKNOWN,
        ),
        (
            'Load key "/tmp/k.pem": invalid format\nadmin@h: Permission denied (publickey).',
            SshFailure.KEY_FILE,
        ),
        (
            "ssh: Could not resolve hostname nowhere.invalid: Name or service not known",
            SshFailure.RESOLVE,
        ),
    ],
)
def test_classify_ssh_failures(stderr, kind):
    assert classify_ssh_failure(255, stderr) is kind


def test_remote_exit_codes_are_not_ssh_failures():
    assert classify_ssh_failure(1, "Connection refused") is None  # the remote command's own
    assert classify_ssh_failure(255, "my script failed") is None


def test_transient_text_for_the_engine():
    assert is_transient_ssh_text("ssh: handshake failed: read tcp: connection reset by peer")
    assert is_transient_ssh_text("dial tcp 203.0.113.10:22: connect: connection refused")
    assert not is_transient_ssh_text("Host key verification failed.")
    assert not is_transient_ssh_text("exit status 1: module not found")


def test_argv_is_strict_and_carries_no_input(tmp_path):
    shell = OpenSshShell(
        host="203.0.113.10",
        user="admin",
        identity_file=tmp_path / "k.pem",
        known_hosts=tmp_path / "known_hosts",
    )
    argv = shell.argv("cat > /tmp/x")
    joined = " ".join(argv)
    for option in (
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        "GlobalKnownHostsFile=/dev/null",
        f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
        "-T",
        "-F none",
    ):
        assert option in joined
    assert "accept-new" not in joined and "StrictHostKeyChecking=no" not in joined
    assert argv[-2:] == ["203.0.113.10", "cat > /tmp/x"]


@pytest.mark.parametrize("host", ["-oProxyCommand=x", "a b", ""])
def test_bad_hosts_are_refused(tmp_path, host):
    with pytest.raises(OpsError):
        OpenSshShell(host=host, user="admin", identity_file="k", known_hosts=tmp_path / "kh")


def test_normalize_host_key_checks_the_blob():
    assert (
        normalize_host_key(HostKey("ssh-ed25519", f"ssh-ed25519 {ED25519} c")).public_key == ED25519
    )
    with pytest.raises(OpsError, match="holds"):
        normalize_host_key(HostKey("ssh-rsa", ED25519))
    with pytest.raises(OpsError):
        normalize_host_key(HostKey("ssh-ed25519", ED25519 + "\nevil.example ssh-ed25519 AAAA"))
    with pytest.raises(OpsError):
        normalize_host_key(HostKey("ssh-ed25519 x", ED25519))


def test_pinning_replaces_only_that_host(tmp_path):
    known_hosts = tmp_path / "tool" / "known_hosts"
    pin_host_keys(known_hosts, "198.51.100.7", [HostKey("ssh-ed25519", ED25519)])
    pin_host_keys(known_hosts, "203.0.113.10", [HostKey("ssh-ed25519", ED25519)], port=2222)
    pin_host_keys(known_hosts, "203.0.113.10", [HostKey("ssh-ed25519", ED25519)], port=2222)
    lines = known_hosts.read_text().splitlines()
    assert lines == [
        f"198.51.100.7 ssh-ed25519 {ED25519}",
        f"[203.0.113.10]:2222 ssh-ed25519 {ED25519}",
    ]
    assert oct(known_hosts.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(OpsError, match="no host keys"):
        pin_host_keys(known_hosts, "203.0.113.10", [])


# ------------------------------------------------------------------ against a real sshd


def test_pinned_key_works_and_stdin_reaches_the_command(sshd_server: SshServer, tmp_path):
    shell = sshd_server.shell(tmp_path / "known_hosts")
    shell.pin_host_keys(sshd_server.host_keys())
    result = shell.run('read line; echo "got:$line"; echo oops >&2; exit 3', stdin=b"not-in-argv\n")
    assert result.exit_code == 3
    assert result.stdout.strip() == "got:not-in-argv"
    assert "oops" in result.stderr


def test_unpinned_host_is_refused_not_trusted(sshd_server: SshServer, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    shell = sshd_server.shell(known_hosts)
    with pytest.raises(HostKeyError) as caught:
        shell.run("true")
    assert str(known_hosts) in caught.value.message
    assert not known_hosts.exists() or known_hosts.read_text() == ""  # nothing learned


def test_a_different_key_is_a_clear_mismatch(sshd_server: SshServer, tmp_path):
    other = tmp_path / "other_key"
    keygen(other)
    known_hosts = tmp_path / "known_hosts"
    shell = sshd_server.shell(known_hosts)
    shell.pin_host_keys([read_host_key(other.with_name("other_key.pub"))])
    with pytest.raises(HostKeyError) as caught:
        shell.run("true")
    assert "does not match" in caught.value.message
    assert str(known_hosts) in caught.value.message


def test_rebuild_then_repin_keeps_other_hosts(fresh_sshd: SshServer, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    pin_host_keys(known_hosts, "198.51.100.7", [HostKey("ssh-ed25519", ED25519)])
    shell = fresh_sshd.shell(known_hosts)
    shell.pin_host_keys(fresh_sshd.host_keys())
    assert shell.run("echo before").stdout.strip() == "before"

    fresh_sshd.rebuild()  # same address, new host key
    with pytest.raises(HostKeyError, match="does not match"):
        shell.run("true")
    shell.pin_host_keys(fresh_sshd.host_keys())
    assert shell.run("echo after").stdout.strip() == "after"

    text = known_hosts.read_text()
    assert f"198.51.100.7 ssh-ed25519 {ED25519}" in text
    pattern = known_hosts_pattern(fresh_sshd.host, fresh_sshd.port)
    assert sum(line.startswith(pattern + " ") for line in text.splitlines()) == 1


def test_wrong_key_is_reported_as_wrong_user_or_key(sshd_server: SshServer, tmp_path):
    stranger = tmp_path / "stranger"
    keygen(stranger)
    shell = OpenSshShell(
        host=sshd_server.host,
        port=sshd_server.port,
        user="root",
        identity_file=stranger,
        known_hosts=tmp_path / "known_hosts",
        backoff=Backoff(first=0.05, factor=1.0, maximum=0.05),
        auth_attempts=3,
    )
    shell.pin_host_keys(sshd_server.host_keys())
    with pytest.raises(SshAuthError) as caught:
        shell.wait_until_reachable(deadline_seconds=30)
    assert "wrong user or key" in caught.value.message
    assert str(stranger) in caught.value.message and "'root'" in caught.value.message
    assert "3 times" in caught.value.message


def test_wait_until_reachable_while_the_server_comes_up(fresh_sshd: SshServer, tmp_path):
    shell = fresh_sshd.shell(tmp_path / "known_hosts")
    shell.pin_host_keys(fresh_sshd.host_keys())
    fresh_sshd.stop()
    messages: list[str] = []
    started = {"done": False}

    def progress(message: str) -> None:
        messages.append(message)
        if len(messages) == 3 and not started["done"]:
            started["done"] = True
            fresh_sshd.start()  # sshd comes back while we wait, as after cloud-init's restart

    shell.wait_until_reachable(deadline_seconds=30, on_progress=progress)
    assert started["done"]
    assert any("refused" in m.lower() for m in messages), messages


def test_wait_gives_up_at_the_deadline_naming_the_cause(tmp_path):
    with socket.socket() as holder:  # a port with nothing listening
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    shell = OpenSshShell(
        host="127.0.0.1",
        port=port,
        user="admin",
        identity_file=tmp_path / "k",
        known_hosts=tmp_path / "kh",
        connect_timeout=1,
        backoff=Backoff(first=0.1, factor=1.0, maximum=0.1),
    )
    with pytest.raises(DeadlineExceeded) as caught:
        shell.wait_until_reachable(deadline_seconds=0.5)
    assert "not reachable" in caught.value.message
    assert "refused" in (caught.value.cause or "").lower()


def test_run_on_a_closed_port_is_transient(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    shell = OpenSshShell(
        host="127.0.0.1",
        port=port,
        user="admin",
        identity_file=tmp_path / "k",
        known_hosts=tmp_path / "kh",
        connect_timeout=2,
    )
    with pytest.raises(SshConnectError):
        shell.run("true")


def test_wait_stops_at_once_on_a_host_key_mismatch(sshd_server: SshServer, tmp_path):
    other = tmp_path / "other_key"
    keygen(other)
    shell = sshd_server.shell(tmp_path / "known_hosts")
    shell.pin_host_keys([read_host_key(other.with_name("other_key.pub"))])
    with pytest.raises(HostKeyError, match="does not match"):
        shell.wait_until_reachable(deadline_seconds=60)
