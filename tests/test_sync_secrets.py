"""scripts/sync_secrets.py end to end: the local vault server, the real Pulumi CLI, a file backend.

Proven here: every mapped secret is fetched over real HTTP (through the stand-in firewall and
Access), set with the real CLI as a passphrase-encrypted secret of stack `prod` (`pulumi config
get` returns it; the stack file holds only ciphertext), and no value appears in our stdout, stderr,
log records, or the argv or environment of any process we start. Not proven: the real vault and a
Pulumi Cloud backend (the CLI code path for `config set` is the same for every backend).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from operations import exitcodes
from operations.errors import OpsError
from operations.stack_config import StackConfig
from operations.vault import SecretValue, load_mapping
from scripts import sync_secrets
from tests.conftest import PROJECT_ROOT
from tests.vault_server import VaultServer, VaultState

pytestmark = pytest.mark.engine

MAPPING = PROJECT_ROOT / "vault-secrets.toml"
PASSPHRASE = "test-passphrase-not-a-secret"


def vault_values() -> dict[tuple[str, str], str]:
    """A distinct, recognisable value for every mapped secret."""
    values = {}
    for source in load_mapping(MAPPING).sources:
        slug = source.name.lower().replace("_", "-")
        values[(source.path, source.name)] = f"val-{slug}-{len(values):02d}-q7"
    return values


class Recorder:
    """Wraps subprocess.Popen to record the argv and environment of every process started."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        real = subprocess.Popen
        recorder = self

        class RecordingPopen(real):  # type: ignore[misc, valid-type]
            def __init__(self, args, *a, **kw):  # type: ignore[no-untyped-def]
                env = kw.get("env")
                recorder.calls.append(
                    ([str(x) for x in args], dict(env if env is not None else os.environ))
                )
                super().__init__(args, *a, **kw)

        monkeypatch.setattr(subprocess, "Popen", RecordingPopen)

    def config_sets(self) -> list[list[str]]:
        return [argv for argv, _ in self.calls if argv[1:3] == ["config", "set"]]


@pytest.fixture
def project(tmp_path, pulumi_cli, monkeypatch):
    """A temp project (the repo's Pulumi.yaml, or a minimal `freescout` one) with stack prod."""
    folder = tmp_path / "project"
    folder.mkdir()
    real = PROJECT_ROOT / "Pulumi.yaml"
    if real.exists():
        shutil.copy(real, folder / "Pulumi.yaml")
    else:
        (folder / "Pulumi.yaml").write_text("name: freescout\nruntime: python\n")
    (tmp_path / "state").mkdir()
    (tmp_path / "home").mkdir()
    env = {
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PULUMI_ACCESS_TOKEN", raising=False)
    subprocess.run(
        [
            pulumi_cli,
            "stack",
            "init",
            "prod",
            "--secrets-provider",
            "passphrase",
            "--non-interactive",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture
def vault(monkeypatch):
    with VaultServer(VaultState(secrets=vault_values())) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


def sync(project: Path, pulumi_cli: str, *extra: str) -> int:
    return sync_secrets.main(
        ["--project-dir", str(project), "--pulumi", pulumi_cli, "--mapping", str(MAPPING), *extra]
    )


def cli_get(pulumi_cli: str, project: Path, key: str) -> str:
    done = subprocess.run(
        [pulumi_cli, "config", "get", key, "--stack", "prod"],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.rstrip("\n")


def cli_all(pulumi_cli: str, project: Path) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [pulumi_cli, "config", "--json", "--show-secrets", "--stack", "prod"],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def secrets_of(server: VaultServer) -> list[str]:
    s = server.state
    return [*s.secrets.values(), s.client_secret, s.cf_client_secret, s.token]


def test_sync_sets_every_key_as_secret_and_leaks_nothing(
    project, vault, pulumi_cli, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    recorder = Recorder(monkeypatch)
    sources = load_mapping(MAPPING).sources

    assert sync(project, pulumi_cli) == exitcodes.OK
    out, err = capsys.readouterr()
    calls = list(recorder.calls)  # the tool's processes only, not the checks below

    assert out.splitlines() == [f"{s.key}: set" for s in sources]
    decrypted = cli_all(pulumi_cli, project)
    for source in sources:
        expected = vault.state.secrets[(source.path, source.name)]
        assert decrypted[source.key] == {"value": expected, "secret": True}, source.key
    tags = vault.state.secrets[("/MooseQuest/freescout", "TAGS_LICENSE_KEY")]
    assert cli_get(pulumi_cli, project, "freescout:license_tags") == tags
    stack_file = (project / "Pulumi.prod.yaml").read_text()
    for source in sources:
        assert f"{source.key}:\n    secure: v1:" in stack_file, f"{source.key} not ciphertext"

    captured = out + err + caplog.text + stack_file
    for secret in secrets_of(vault):
        assert secret not in captured
        for argv, env in calls:
            assert not any(secret in arg for arg in argv), f"secret in argv {argv[:4]}"
            assert secret not in env.values(), "a secret in a child's environment"
    # The vault credentials stay in this process: pulumi never sees them.
    for argv, env in calls:
        assert not {"INFISICAL_CLIENT_SECRET", "CF_ACCESS_CLIENT_SECRET"} & set(env), argv[:3]
    sets = recorder.config_sets()
    assert len(sets) == len(sources)
    assert all("--secret" in argv and argv[-2] in {s.key for s in sources} for argv in sets)
    # The firewall and Access saw what they need on every request.
    assert all(r["headers"]["user-agent"] == "raxx-ops/1.0" for r in vault.state.requests)

    # A second run changes nothing; a rotated value is set again, alone.
    name = ("/MooseQuest/freescout", "TAGS_LICENSE_KEY")
    vault.state.secrets[name] = "val-rotated-tags-key-q7"
    assert sync(project, pulumi_cli) == exitcodes.OK
    out, _ = capsys.readouterr()
    changed = [line for line in out.splitlines() if not line.endswith(": unchanged")]
    assert changed == ["freescout:license_tags: set"]
    assert cli_get(pulumi_cli, project, "freescout:license_tags") == "val-rotated-tags-key-q7"
    assert "val-rotated-tags-key-q7" not in out


def test_a_broken_stack_is_found_before_the_vault_is_asked(project, vault, pulumi_cli, capsys):
    assert sync(project, pulumi_cli, "--stack", "nosuchstack") != exitcodes.OK
    _out, err = capsys.readouterr()
    assert "nosuchstack" in err
    assert "vault: logging in" not in err
    assert vault.state.requests == [], "no request reached the vault"


def test_a_failed_fetch_midway_changes_nothing(project, vault, pulumi_cli, monkeypatch, capsys):
    del vault.state.secrets[("/MooseQuest/freescout", "SLACK_LICENSE_KEY")]
    before = (
        (project / "Pulumi.prod.yaml").read_bytes()
        if (project / "Pulumi.prod.yaml").exists()
        else None
    )
    recorder = Recorder(monkeypatch)

    assert sync(project, pulumi_cli) == exitcodes.FAILED
    out, err = capsys.readouterr()

    assert "SLACK_LICENSE_KEY" in err and "/MooseQuest/freescout" in err and "404" in err
    assert out == ""
    assert recorder.config_sets() == [], "nothing is set before every secret is fetched"
    assert [argv[1:3] for argv, _ in recorder.calls] == [["config", "--json"]], (
        "only the read-only stack check runs before the vault"
    )
    after = (
        (project / "Pulumi.prod.yaml").read_bytes()
        if (project / "Pulumi.prod.yaml").exists()
        else None
    )
    assert after == before
    for secret in secrets_of(vault):
        assert secret not in out + err


def test_dry_run_and_only(project, vault, pulumi_cli, monkeypatch, capsys):
    recorder = Recorder(monkeypatch)
    assert sync(project, pulumi_cli, "--dry-run", "--only", "freescout:license_tags") == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == ["freescout:license_tags: would set"]
    assert recorder.config_sets() == []

    assert sync(project, pulumi_cli, "--only", "freescout:license_tags", "cloudflare:apiToken") == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == ["freescout:license_tags: set", "cloudflare:apiToken: set"]
    assert len(recorder.config_sets()) == 2

    assert sync(project, pulumi_cli, "--only", "freescout:nope") == exitcodes.USAGE
    assert "freescout:nope" in capsys.readouterr().err


def test_missing_stack_is_a_usage_error_with_the_init_command(project, vault, pulumi_cli, capsys):
    assert sync(project, pulumi_cli, "--stack", "staging") == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "pulumi stack init staging" in err


def test_wrong_passphrase_is_named(project, vault, pulumi_cli, monkeypatch, capsys):
    assert sync(project, pulumi_cli, "--only", "freescout:license_tags") == 0
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not-the-passphrase")
    capsys.readouterr()
    assert sync(project, pulumi_cli) == exitcodes.USAGE
    assert "PULUMI_CONFIG_PASSPHRASE" in capsys.readouterr().err


def test_missing_vault_settings_exit_2_listing_them(monkeypatch, capsys, tmp_path):
    for var in (
        "INFISICAL_HOST",
        "INFISICAL_CLIENT_ID",
        "INFISICAL_CLIENT_SECRET",
        "INFISICAL_PROJECT_ID",
        "CF_ACCESS_CLIENT_ID",
        "CF_ACCESS_CLIENT_SECRET",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("INFISICAL_HOST", "https://vault.raxx.app")
    code = sync_secrets.main(["--mapping", str(MAPPING), "--project-dir", str(tmp_path)])
    assert code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "INFISICAL_CLIENT_SECRET" in err and "CF_ACCESS_CLIENT_SECRET" in err
    assert "INFISICAL_HOST," not in err


def test_help_explains_the_environment(capsys):
    with pytest.raises(SystemExit) as info:
        sync_secrets.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for var in (
        "INFISICAL_HOST",
        "INFISICAL_CLIENT_ID",
        "INFISICAL_CLIENT_SECRET",
        "INFISICAL_PROJECT_ID",
        "CF_ACCESS_CLIENT_ID",
        "CF_ACCESS_CLIENT_SECRET",
        "PULUMI_CONFIG_PASSPHRASE",
        "--dry-run",
        "--only",
        "exit codes",
    ):
        assert var in out


def test_awkward_values_survive_stdin_exactly(project, pulumi_cli):
    """Values a command line would mangle: a leading dash, several lines, quotes, non-ASCII."""
    config = StackConfig(pulumi_cli, cwd=project, env=os.environ, stack="prod")
    awkward = {
        "freescout:license_tags": "--looks-like-a-flag",
        "freescout:mail_token": "line one\nline two 'quoted' \"double\" $HOME `x` ünï",
    }
    for key, value in awkward.items():
        config.set(key, SecretValue(value))
    for key, value in awkward.items():
        assert cli_all(pulumi_cli, project)[key] == {"value": value, "secret": True}
    assert config.keys_set() == dict.fromkeys(awkward, True)


def test_cli_error_text_is_scrubbed_of_the_value_it_was_given(tmp_path):
    """A stand-in for the CLI that echoes the value on failure (the real one never does, so
    this cannot be provoked for real): the message must still not carry the value."""

    def echoing_cli(argv, **kwargs):
        stderr = b"error: could not save value " + kwargs["input"] + b" to the stack"
        return subprocess.CompletedProcess(argv, 1, b"", stderr)

    config = StackConfig("pulumi", cwd=tmp_path, env={}, stack="prod", run=echoing_cli)
    with pytest.raises(OpsError) as info:
        config.set("freescout:license_tags", SecretValue("echoed-secret-5150"))
    text = info.value.render()
    assert "echoed-secret-5150" not in text and "***" in text
    assert "setting freescout:license_tags" in text
