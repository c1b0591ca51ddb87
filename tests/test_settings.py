"""Config validation: a pure function over a plain mapping, one error listing every problem.

Each kind of problem is shown with the exact `pulumi config set` command that fixes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from freescout import modules as catalog
from freescout import settings as config
from operations import exitcodes
from operations.errors import UsageError
from tests import program_mocks as pm


def kinds(problems: list[config.Problem]) -> set[tuple[str, str]]:
    return {(p.key, p.kind) for p in problems}


def test_prod_with_secrets_is_valid_and_ordered() -> None:
    settings = pm.prod_settings()
    assert settings.protect is True
    assert settings.hostname == "tickets.raxx.app"
    assert [m.alias for m in settings.modules].index("workflows") > \
        [m.alias for m in settings.modules].index("tags")
    assert "TEST-LICENSE" not in repr(settings), "secrets must stay out of repr"


def test_prod_file_as_committed_names_every_unset_key() -> None:
    stack = config_from_file()
    problems = config.validate(stack.values, stack.secret_keys)
    missing = {p.key for p in problems if p.kind == "missing"}
    expected = {"freescout:cloudflare_zone_id", "cloudflare:apiToken",
                *(f"freescout:{m.license_key}" for m in catalog.CATALOG)}
    assert missing == expected
    assert {p.kind for p in problems} == {"missing"}
    zone = next(p for p in problems if p.key == "freescout:cloudflare_zone_id")
    assert zone.fix.startswith("pulumi config set freescout:cloudflare_zone_id ")
    tags = next(p for p in problems if p.key == "freescout:license_tags")
    assert tags.fix.startswith("pulumi config set --secret freescout:license_tags  (enter")


def config_from_file():
    from freescout.offline_plan import load_stack_config
    from tests.conftest import PROJECT_ROOT

    return load_stack_config(PROJECT_ROOT, "prod")


def test_one_error_lists_every_problem_with_its_command() -> None:
    values, secret_keys = pm.prod_config(
        hostname="Tickets_raxx",
        cloudflare_zone_id="REPLACE_WITH_TF_VAR_cloudflare_zone_id",
        license_tags=None,
        modules='["workflows", "custom_fields", "wiki"]',
        ssh_user=None,
    )
    values["freescout:license_slack"] = "REPLACE_WITH_SLACK_KEY"
    with pytest.raises(config.InvalidConfig) as caught:
        config.from_mapping(values, secret_keys, stack="prod")
    error = caught.value
    assert error.exit_code == exitcodes.USAGE
    assert kinds(error.problems) >= {
        ("freescout:hostname", "malformed"),
        ("freescout:cloudflare_zone_id", "placeholder"),
        ("freescout:license_slack", "placeholder"),
        ("freescout:ssh_user", "missing"),
        ("freescout:modules", "unknown_module"),
        ("freescout:modules", "needs"),
    }, kinds(error.problems)
    text = error.render()
    for problem in error.problems:
        assert problem.fix.startswith("pulumi config "), problem
        assert problem.fix in text, problem
    assert "pulumi config set freescout:ssh_user admin" in text
    assert "pulumi config set freescout:hostname tickets.raxx.app" in text


@pytest.mark.parametrize("key", [
    "freescout:hostname", "aws:region", "freescout:instance_name", "freescout:static_ip_name",
    "freescout:cloudflare_zone_id", "freescout:ssh_private_key_path", "freescout:modules",
    "cloudflare:apiToken",
])
def test_missing_key(key: str) -> None:
    values, secret_keys = pm.prod_config(**{key: None})
    problems = config.validate(values, secret_keys)
    assert kinds(problems) == {(key, "missing")}, problems
    assert problems[0].fix.startswith("pulumi config set ")


@pytest.mark.parametrize("key", ["freescout:hostname", "freescout:license_oauth",
                                 "cloudflare:apiToken", "freescout:modules"])
def test_placeholder_anywhere_including_secrets(key: str) -> None:
    values, secret_keys = pm.prod_config()
    values[key] = '["tags","REPLACE_WITH_MODULES"]' if key == config.MODULES_KEY \
        else f"prefix-REPLACE_WITH_{key.upper()}"
    problems = config.validate(values, secret_keys)
    assert (key, "placeholder") in kinds(problems), problems
    fix = next(p.fix for p in problems if p.key == key)
    secret = key != "freescout:hostname" and key != "freescout:modules"
    assert ("--secret" in fix) is secret, fix


def test_license_missing_for_an_enabled_module_only() -> None:
    values, secret_keys = pm.prod_config(modules='["tags"]', license_tags=None,
                                         license_slack=None)
    problems = config.validate(values, secret_keys)
    assert kinds(problems) == {("freescout:license_tags", "missing")}, problems
    assert problems[0].fix.startswith("pulumi config set --secret freescout:license_tags  (enter")


def test_unknown_module_fix_drops_it() -> None:
    values, secret_keys = pm.prod_config(modules='["tags", "wiki"]')
    problems = config.validate(values, secret_keys)
    assert kinds(problems) == {("freescout:modules", "unknown_module")}
    assert "'wiki'" in problems[0].message
    assert problems[0].fix == """pulumi config set freescout:modules '["tags"]'"""


def test_module_without_its_prerequisites() -> None:
    values, secret_keys = pm.prod_config(modules='["workflows"]')
    problems = config.validate(values, secret_keys)
    assert kinds(problems) == {("freescout:modules", "needs")}
    assert "tags" in problems[0].message and "custom_fields" in problems[0].message
    assert problems[0].fix == \
        """pulumi config set freescout:modules '["custom_fields","tags","workflows"]'"""


@pytest.mark.parametrize("hostname", ["tickets", "-x.raxx.app", "tickets..raxx.app",
                                      "TICKETS.raxx.app", "tick ets.raxx.app", "a" * 64 + ".app"])
def test_malformed_host_name(hostname: str) -> None:
    values, secret_keys = pm.prod_config(hostname=hostname)
    assert kinds(config.validate(values, secret_keys)) == {("freescout:hostname", "malformed")}


def test_secret_stored_in_plain_text() -> None:
    values, secret_keys = pm.prod_config()
    secret_keys.discard("freescout:license_tags")
    problems = config.validate(values, secret_keys)
    assert kinds(problems) == {("freescout:license_tags", "plaintext")}
    assert "--secret" in problems[0].fix


def test_unknown_key_and_bad_protect() -> None:
    values, secret_keys = pm.prod_config(licence_tags="x", protect="maybe")
    assert kinds(config.validate(values, secret_keys)) == {
        ("freescout:licence_tags", "unknown_key"), ("freescout:protect", "malformed")}


@pytest.mark.parametrize(("raw", "expected"), [
    ("false", False), ("true", True), (False, False), ("False", False), (None, True)])
def test_protect_values(raw, expected) -> None:
    assert pm.prod_settings(protect=raw).protect is expected


def test_modules_as_list_or_json_string() -> None:
    as_list = pm.prod_settings(modules=["tags", "slack"])
    as_json = pm.prod_settings(modules='["tags","slack"]')
    assert as_list.modules == as_json.modules
    assert [m.alias for m in as_list.modules] == ["tags", "slack"]
    assert pm.prod_settings(modules="[]").modules == ()


def test_mail_token_is_optional() -> None:
    assert pm.prod_settings().mail_token is None
    values, secret_keys = pm.prod_config(mail_token="tok-1")
    problems = config.validate(values, secret_keys)
    assert kinds(problems) == {("freescout:mail_token", "plaintext")}


def test_a_lower_case_placeholder_is_still_a_placeholder() -> None:
    values, secret_keys = pm.prod_config(instance_name="replace_with_instance_name")
    assert kinds(config.validate(values, secret_keys)) == {
        ("freescout:instance_name", "placeholder")}


@pytest.mark.parametrize("raw", ["no", "yes", "0", "1", "on", '["true"]', "maybe", 0])
def test_protect_that_is_not_a_boolean_names_the_key_and_fix(raw) -> None:
    values, secret_keys = pm.prod_config(protect=raw)
    problems = config.validate(values, secret_keys)
    assert kinds(problems) == {("freescout:protect", "malformed")}
    assert problems[0].fix == "pulumi config set freescout:protect true"
    with pytest.raises(config.InvalidConfig) as caught:
        config.from_mapping(values, secret_keys)
    assert caught.value.exit_code == exitcodes.USAGE


@pytest.mark.parametrize(("raw", "words"), [
    (None, "is not set"), ("null", "is empty"), ("", "is empty"), ("5", "is not a list"),
    ('[{"a":"b"}]', "is not a list"), ("tags,slack", "is not a list"), ('"tags"', "is not a list"),
    (5, "is not a list"), (["tags", 5], "is not a list"),
])
def test_module_list_of_the_wrong_shape(raw, words: str) -> None:
    values, secret_keys = pm.prod_config()
    values[config.MODULES_KEY] = raw
    problems = config.validate(values, secret_keys)
    assert {(p.key, p.kind) for p in problems} <= {
        (config.MODULES_KEY, "missing"), (config.MODULES_KEY, "malformed")}, problems
    (problem,) = problems
    assert words in problem.message
    assert problem.fix.startswith("pulumi config set freescout:modules '[\"api_webhooks\",")
    assert config.parse_modules(raw) is None


@pytest.mark.parametrize(("key", "raw"), [
    ("aws:region", "us east 1"), ("aws:region", '["us-east-1"]'),
    ("freescout:availability_zone", '["x"]'), ("freescout:availability_zone", "us-east-1"),
    ("freescout:availability_zone", "us-west-2a"),  # not in aws:region us-east-1
    ("freescout:blueprint_id", "lamp ls"), ("freescout:bundle_id", '{"a":1}'),
    ("freescout:ssh_user", "root;reboot"), ("freescout:instance_name", "a b"),
    ("freescout:static_ip_name", "[ip]"), ("freescout:hostname", "https://tickets.raxx.app/"),
])
def test_malformed_plain_values(key: str, raw: str) -> None:
    values, secret_keys = pm.prod_config(**{key: raw})
    problems = config.validate(values, secret_keys)
    assert kinds(problems) == {(key, "malformed")}, problems
    assert problems[0].fix.startswith(f"pulumi config set {key} ")


def test_a_plain_setting_stored_encrypted_is_named() -> None:
    values, secret_keys = pm.prod_config(instance_name="[encrypted in Pulumi.prod.yaml]")
    problems = config.validate(values, {*secret_keys, "freescout:instance_name"})
    assert kinds(problems) == {("freescout:instance_name", "encrypted")}
    assert problems[0].fix == "pulumi config set freescout:instance_name raxx-tickets"


def stack_file(tmp_path: Path, body: str) -> config.StackFile:
    (tmp_path / "Pulumi.t.yaml").write_text("config:\n" + body, encoding="utf-8")
    return config.read_stack_file(tmp_path, "t")


def test_the_stack_file_reads_as_the_engine_passes_it(tmp_path: Path) -> None:
    """Pulumi's CLI (yaml.v3, config.Value) passes strings: objects as JSON, scalars as text."""
    found = stack_file(tmp_path, (
        "  freescout:modules:\n    - tags\n    - slack\n"
        "  freescout:protect: true\n"
        "  freescout:instance_name: 12345\n"
        "  freescout:ssh_user:\n"
        "  freescout:freescout_ref: 2024-01-01\n"
        "  freescout:blueprint_id: no\n"
        "  freescout:license_tags:\n    secure: v1:abc\n"))
    assert found.values == {
        "freescout:modules": '["tags","slack"]',
        "freescout:protect": "true",
        "freescout:instance_name": "12345",
        "freescout:ssh_user": "",
        "freescout:freescout_ref": "2024-01-01 00:00:00 +0000 UTC",  # a Go time, as text
        "freescout:blueprint_id": "no",  # YAML 1.2: `no` is a string, not false
        "freescout:license_tags": "[encrypted in Pulumi.t.yaml]",
    }
    assert found.encrypted == {"freescout:license_tags"}
    assert found.raw["freescout:protect"] is True


def test_unquoted_no_for_protect_is_refused_as_the_engine_would(tmp_path: Path) -> None:
    found = stack_file(tmp_path, "  freescout:protect: no\n")
    problems = config.validate(found.values, found.encrypted)
    assert ("freescout:protect", "malformed") in kinds(problems)


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        stack_file(tmp_path, "  aws:region: us-east-1\n  aws:region: eu-west-1\n")
    assert "'aws:region' is written twice" in caught.value.message
    assert caught.value.exit_code == exitcodes.USAGE
