"""operations.vault against a local HTTP server that behaves like the vault, Access and the WAF.

Real HTTP over 127.0.0.1 (tests/vault_server.py); what the server does not prove is in its
docstring. Every failure test also checks that no credential or secret value reaches the message.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from operations.errors import OpsError, TransientError, UsageError
from operations.retry import Clock
from operations.vault import (
    USER_AGENT,
    SecretMapping,
    SecretSource,
    SecretValue,
    VaultClient,
    VaultSettings,
    fetch_all,
    load_mapping,
)
from tests.conftest import PROJECT_ROOT
from tests.vault_server import VaultServer, VaultState, vault_env

CF_PATH = "/MooseQuest/cloudflare"
FS_PATH = "/MooseQuest/freescout"


def make_state() -> VaultState:
    return VaultState(
        secrets={
            (CF_PATH, "CLOUDFLARE_EDIT_DNS"): "cf-token-value-91d2",
            (FS_PATH, "TAGS_LICENSE_KEY"): "tags-license-value-55aa",
            (FS_PATH, "EMPTY_ONE"): "",
            (FS_PATH, "BLANKS"): "  \n",
            (FS_PATH, "PLACEHOLDER"): "REPLACE_WITH_REAL_KEY",
            (FS_PATH, "NEWLINE"): "value-with-newline-77\n",
        }
    )


def all_secrets(state: VaultState) -> list[str]:
    """Every credential and value the server holds: none may appear in any message."""
    values = [
        state.client_secret,
        state.cf_client_secret,
        state.token,
        state.client_id,
        state.cf_client_id,
    ]
    return values + [v for v in state.secrets.values() if v.strip() and "REPLACE" not in v]


def assert_clean(text: str, state: VaultState) -> None:
    for secret in all_secrets(state):
        assert secret not in text, "a secret value leaked into a message"


@pytest.fixture
def vault():
    with VaultServer(make_state()) as server:
        yield server


def client_for(server: VaultServer, **kwargs) -> VaultClient:
    settings = VaultSettings.from_env(server.env())
    timeout = kwargs.pop("timeout", None)
    if timeout is not None:
        settings = VaultSettings(**{**settings.__dict__, "timeout_seconds": timeout})
    kwargs.setdefault("clock", Clock(sleep=lambda s: None))
    return VaultClient(settings, **kwargs)


def failure(server: VaultServer, action, kind=OpsError) -> OpsError:
    with pytest.raises(kind) as info:
        action()
    error = info.value
    assert_clean(error.render() + repr(error) + str(error.__cause__), server.state)
    return error


# ---------------------------------------------------------------- success


def test_login_and_fetch_send_user_agent_access_headers_and_token(vault):
    client = client_for(vault)
    value = client.fetch("CLOUDFLARE_EDIT_DNS", CF_PATH)

    assert value.reveal() == "cf-token-value-91d2"
    login, fetch = vault.state.requests
    assert login["method"] == "POST" and login["path"] == "/api/v1/auth/universal-auth/login"
    assert fetch["path"] == "/api/v3/secrets/raw/CLOUDFLARE_EDIT_DNS"
    for request in (login, fetch):
        headers = request["headers"]
        assert headers["user-agent"] == USER_AGENT == "raxx-ops/1.0"
        assert headers["cf-access-client-id"] == vault.state.cf_client_id
        assert headers["cf-access-client-secret"] == vault.state.cf_client_secret
    assert "authorization" not in login["headers"]
    assert fetch["headers"]["authorization"] == f"Bearer {vault.state.token}"
    assert "secretPath=%2FMooseQuest%2Fcloudflare" in fetch["query"]
    assert "environment=prod" in fetch["query"] and "workspaceId=project-0001" in fetch["query"]


def test_trailing_newline_of_a_pasted_value_is_dropped(vault):
    assert client_for(vault).fetch("NEWLINE", FS_PATH).reveal() == "value-with-newline-77"


def test_fetch_all_returns_values_by_config_key(vault):
    sources = [
        SecretSource("cloudflare:apiToken", "CLOUDFLARE_EDIT_DNS", CF_PATH),
        SecretSource("freescout:license_tags", "TAGS_LICENSE_KEY", FS_PATH),
    ]
    values = fetch_all(client_for(vault), sources)
    assert {k: v.reveal() for k, v in values.items()} == {
        "cloudflare:apiToken": "cf-token-value-91d2",
        "freescout:license_tags": "tags-license-value-55aa",
    }


# ---------------------------------------------------------------- the firewall and Access


def test_server_blocks_urllib_default_user_agent_like_cloudflare(vault):
    """The stand-in firewall really rejects what the runbook says Cloudflare rejects."""
    request = urllib.request.Request(vault.url + "/api/v1/auth/universal-auth/login", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 403
    assert "1010" in info.value.read().decode()


@pytest.mark.parametrize("agent", ["", "Python-urllib/3.11"])
def test_firewall_1010_gets_its_own_message(vault, agent):
    error = failure(vault, lambda: client_for(vault, user_agent=agent).login())
    assert "1010" in error.message and "firewall" in error.message
    assert "User-Agent" in (error.hint or "")


def test_wrong_access_service_token_is_an_access_403_not_the_firewall(vault):
    client = client_for(vault)
    vault.state.cf_client_secret = "another-secret"
    error = failure(vault, client.login)
    assert "Cloudflare Access refused" in error.message and "1010" not in error.message
    assert "CF_ACCESS_CLIENT_ID" in (error.cause or "")


def test_access_login_redirect_is_not_followed(vault):
    client = client_for(vault)
    vault.state.cf_client_id = "another-id"
    vault.state.access_redirect = True
    error = failure(vault, client.login)
    assert "redirected" in error.message and "cloudflareaccess.com" in error.message
    assert len(vault.state.requests) == 1


# ---------------------------------------------------------------- Infisical refusals


def test_bad_client_secret_is_401_naming_the_identity_settings(vault):
    env = vault.env() | {"INFISICAL_CLIENT_SECRET": "wrong-client-secret-1234"}
    client = VaultClient(VaultSettings.from_env(env))
    with pytest.raises(OpsError) as info:
        client.login()
    text = info.value.render()
    assert "401" in text and "INFISICAL_CLIENT_SECRET" in text
    assert "wrong-client-secret-1234" not in text
    assert_clean(text, vault.state)


def test_rejected_token_during_fetch_is_401_expired(vault):
    client = client_for(vault)
    client.login()
    vault.state.token = "rotated-token-9999"
    error = failure(vault, lambda: client.fetch("TAGS_LICENSE_KEY", FS_PATH))
    assert "401" in error.message and "expired" in (error.cause or "")


def test_unknown_secret_is_404_naming_name_and_path(vault):
    error = failure(vault, lambda: client_for(vault).fetch("TAGS_LICENCE_KEY", FS_PATH))
    assert "404" in error.message
    assert "TAGS_LICENCE_KEY" in error.message and FS_PATH in error.message


def test_wrong_path_is_404_naming_it(vault):
    error = failure(vault, lambda: client_for(vault).fetch("TAGS_LICENSE_KEY", "/MooseQuest"))
    assert "at path /MooseQuest " in error.message


def test_identity_without_permission_is_a_vault_403(vault):
    vault.state.forbidden_paths.add(FS_PATH)
    error = failure(vault, lambda: client_for(vault).fetch("TAGS_LICENSE_KEY", FS_PATH))
    assert "may not read" in error.message and "Access" not in error.message


# ---------------------------------------------------------------- bad answers and values


@pytest.mark.parametrize(
    ("body", "content_type", "expect"),
    [
        (b"<html>Sign in with Cloudflare Access</html>", "text/html", "not JSON"),
        (b'{"token": "x"}', "application/json", "no accessToken"),
        (b"[1, 2]", "application/json", "no accessToken"),
    ],
)
def test_login_answer_that_is_not_the_expected_json(vault, body, content_type, expect):
    vault.state.raw_answer = (200, content_type, body)
    error = failure(vault, lambda: client_for(vault).login())
    assert expect in error.message


def test_secret_answer_of_the_wrong_shape(vault):
    client = client_for(vault)
    client.login()
    vault.state.raw_answer = (200, "application/json", b'{"secret": {"value": "x"}}')
    error = failure(vault, lambda: client.fetch("TAGS_LICENSE_KEY", FS_PATH))
    assert "no secret.secretValue" in error.message


@pytest.mark.parametrize("name", ["EMPTY_ONE", "BLANKS"])
def test_empty_value_is_an_error_naming_the_secret(vault, name):
    error = failure(vault, lambda: client_for(vault).fetch(name, FS_PATH))
    assert "empty" in error.message and name in error.message and FS_PATH in error.message


def test_placeholder_value_is_an_error_naming_the_secret(vault):
    error = failure(vault, lambda: client_for(vault).fetch("PLACEHOLDER", FS_PATH))
    assert "placeholder" in error.message and "PLACEHOLDER" in error.message


# ---------------------------------------------------------------- the network


def test_slow_vault_times_out_and_is_retried_then_reported(vault):
    vault.state.delay_seconds = 1.0
    pauses: list[float] = []
    client = client_for(vault, timeout=0.2, attempts=2, clock=Clock(sleep=pauses.append))
    error = failure(vault, client.login, kind=TransientError)
    assert "did not answer login within 0.2s" in error.message
    assert len(pauses) == 1, "one pause between the two attempts"


def test_server_errors_are_retried(vault):
    vault.state.raw_answer = (503, "text/html", b"<html>busy</html>")
    pauses: list[float] = []
    client = client_for(vault, attempts=3, clock=Clock(sleep=pauses.append))
    error = failure(vault, client.login, kind=TransientError)
    assert "503" in error.message
    assert len(vault.state.requests) == 3 and len(pauses) == 2


def test_connection_refused_names_the_host():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port is closed again: nothing listens there.
    env = vault_env(f"http://127.0.0.1:{port}", VaultState())
    client = VaultClient(VaultSettings.from_env(env), clock=Clock(sleep=lambda s: None))
    with pytest.raises(OpsError) as info:
        client.login()
    assert "connection refused" in info.value.message
    assert f"127.0.0.1:{port}" in info.value.message
    assert not isinstance(info.value, TransientError)


# ---------------------------------------------------------------- settings and redaction


def test_missing_settings_are_listed_together_with_how_to_set_them():
    with pytest.raises(UsageError) as info:
        VaultSettings.from_env(
            {"INFISICAL_HOST": "https://vault.raxx.app", "CF_ACCESS_CLIENT_ID": ""}
        )
    text = info.value.render()
    for var in (
        "INFISICAL_CLIENT_ID",
        "INFISICAL_CLIENT_SECRET",
        "INFISICAL_PROJECT_ID",
        "CF_ACCESS_CLIENT_ID",
        "CF_ACCESS_CLIENT_SECRET",
    ):
        assert var in info.value.message
    assert "INFISICAL_HOST," not in info.value.message
    assert "export" in text


def test_plain_http_is_refused_for_a_remote_vault():
    env = vault_env("http://vault.raxx.app", VaultState())
    with pytest.raises(UsageError, match="http://"):
        VaultSettings.from_env(env)


def test_reprs_and_formatting_never_show_values(vault):
    settings = VaultSettings.from_env(vault.env())
    value = SecretValue("super-secret-value-1")
    client = client_for(vault)
    client.login()
    shown = " ".join(
        [
            repr(settings),
            str(settings),
            repr(value),
            str(value),
            f"{value}",
            f"{value!r}",
            repr(client),
            repr([value]),
            repr({"k": value}),
        ]
    )
    assert "super-secret-value-1" not in shown
    assert_clean(shown, vault.state)
    assert value == SecretValue("super-secret-value-1") and value != SecretValue("other")


# ---------------------------------------------------------------- the mapping file

# The runbook's loop (Step 2): "VAULT_NAME:config_name" for the ten module licenses.
RUNBOOK_LICENSES = {
    "license_api_webhooks": "API_WEBHOOKS_LICENSE_KEY",
    "license_reports": "REPORTS_LICENSE_KEY",
    "license_oauth": "OAUTH_LICENSE_KEY",
    "license_custom_fields": "CUSTOM_FIELDS_LICENSE_KEY",
    "license_tags": "TAGS_LICENSE_KEY",
    "license_workflows": "WORKFLOWS_LICENSE_KEY",
    "license_customization": "CUSTOMIZATION_LICENSE_KEY",
    "license_saved_replies": "SAVED_REPLIES_LICENSE_KEY",
    "license_slack": "SLACK_LICENSE_KEY",
    "license_custom_folders": "CUSTOM_FOLDERS_LICENSE_KEY",
}


def test_repository_mapping_covers_the_stack_contract():
    mapping = load_mapping(PROJECT_ROOT / "vault-secrets.toml")
    table = {s.key: (s.name, s.path, s.secret) for s in mapping.sources}
    expected = {
        "cloudflare:apiToken": ("CLOUDFLARE_EDIT_DNS", CF_PATH, True),
        "freescout:cloudflare_zone_id": ("CLOUDFLARE_ZONE_ID_RAXX_APP", CF_PATH, True),
        "freescout:mail_token": ("POSTMARK_SERVER_TOKEN", FS_PATH, True),
    } | {f"freescout:{k}": (name, FS_PATH, True) for k, name in RUNBOOK_LICENSES.items()}
    assert table == expected
    assert mapping.environment == "prod"


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ('environment = "prod"\n', "no [[secret]]"),
        ('[[secret]]\nkey = "nokey"\nname = "A"\npath = "/p"\n', "config key"),
        ('[[secret]]\nkey = "a:b"\nname = "A B"\npath = "/p"\n', "vault secret name"),
        ('[[secret]]\nkey = "a:b"\nname = "A"\npath = "p"\n', "start with '/'"),
        ('[[secret]]\nkey = "a:b"\nname = "A"\npath = "/p"\nextra = 1\n', "unknown fields"),
        ('[[secret]]\nkey = "a:b"\nname = "A"\npath = "/p"\nsecret = "yes"\n', "true or false"),
        (
            '[[secret]]\nkey = "a:b"\nname = "A"\npath = "/p"\n'
            '[[secret]]\nkey = "a:b"\nname = "B"\npath = "/p"\n',
            "mapped twice",
        ),
        ("[[secret]\n", "not valid TOML"),
    ],
)
def test_bad_mapping_files_are_usage_errors(tmp_path, text, expect):
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=expect.replace("[", r"\[")):
        load_mapping(path)


def test_select_unknown_key_lists_the_known_ones():
    mapping = SecretMapping("prod", (SecretSource("a:b", "A", "/p"),))
    assert mapping.select(["a:b", "a:b"]) == mapping.sources
    with pytest.raises(UsageError) as info:
        mapping.select(["a:c"])
    assert "a:c" in info.value.message and "a:b" in (info.value.cause or "")
