"""Config validation: a pure function over a plain mapping, one error listing every problem.

Each kind of problem is shown with the exact `pulumi config set` command that fixes it.
"""

from __future__ import annotations

import pytest

from freescout import modules as catalog
from freescout import settings as config
from operations import exitcodes
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
    current = values[key]
    values[key] = ["tags", "REPLACE_WITH_MODULES"] if isinstance(current, list) \
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
