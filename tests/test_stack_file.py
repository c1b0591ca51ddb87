"""load_target: what scripts/rebuild.py and restore.py read from Pulumi.<stack>.yaml.

Real stack files in a temporary directory, read by the same reader and validators as the
program (freescout/settings.py). Every bad value must end as a UsageError (exit 2) naming the
key and the command that fixes it, never as a traceback or as a name passed on to AWS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from freescout import modules as catalog
from freescout import settings
from operations import exitcodes
from operations.errors import UsageError
from operations.rebuild_cli import main as rebuild_main
from operations.restore_cli import main as restore_main
from operations.stack_file import config_value, load_target, read_config
from tests.conftest import PROJECT_ROOT, find_tool, need

PROD = (PROJECT_ROOT / "Pulumi.prod.yaml").read_text(encoding="utf-8")
MODULE_LINES = PROD[PROD.index("  freescout:modules:"):]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.prod.yaml").write_text(PROD, encoding="utf-8")
    return tmp_path


def write(project: Path, text: str) -> Path:
    (project / "Pulumi.prod.yaml").write_text(text, encoding="utf-8")
    return project


def replaced(old: str, new: str) -> str:
    assert old in PROD, old
    return PROD.replace(old, new)


def with_modules(lines: str) -> str:
    return PROD.replace(MODULE_LINES, lines)


def refused(project: Path) -> str:
    """load_target's refusal, rendered as the operator sees it; asserts exit 2."""
    with pytest.raises(UsageError) as caught:
        load_target(project, "prod")
    assert caught.value.exit_code == exitcodes.USAGE
    return caught.value.render()


def test_prod_as_committed() -> None:
    target = load_target(PROJECT_ROOT, "prod")
    assert (target.instance_name, target.static_ip_name, target.hostname) == (
        "raxx-tickets", "raxx-tickets-ip", "tickets.raxx.app")
    assert (target.availability_zone, target.bundle_id) == ("us-east-1a", "micro_3_0")
    # The program's install order: workflows after what it needs.
    assert target.module_aliases == tuple(m.alias for m in catalog.install_order(
        catalog.SHORT_NAMES))
    assert set(target.module_aliases) == {m.alias for m in catalog.CATALOG}


def test_the_readme_modules_command_is_read_as_a_list(project: Path) -> None:
    """The README's command stores a JSON string; both tools must read it as the program does."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"pulumi config set freescout:modules '(\[[^']*\])'", readme)
    assert found, "the README shows how to choose modules"
    stored = found.group(1)
    write(project, with_modules(f"  freescout:modules: '{stored}'\n"))
    as_string = load_target(project, "prod").module_aliases
    write(project, with_modules("  freescout:modules:\n" + "".join(
        f"    - {short}\n" for short in settings.parse_modules(stored) or [])))
    as_list = load_target(project, "prod").module_aliases
    assert as_string == as_list == ("customfields", "tags", "workflows")


def test_no_module_is_a_valid_choice(project: Path) -> None:
    write(project, with_modules("  freescout:modules: []\n"))
    assert load_target(project, "prod").module_aliases == ()
    write(project, with_modules("  freescout:modules: '[]'\n"))
    assert load_target(project, "prod").module_aliases == ()


@pytest.mark.parametrize("lines", [
    "  freescout:modules:\n",                              # null
    "  freescout:modules: 5\n",
    "  freescout:modules:\n    - {a: b}\n",                # a mapping in the list
    "  freescout:modules:\n    - [tags]\n",
    "  freescout:modules: tags,custom_fields\n",           # a comma list is not the format
    "  freescout:modules: '\"tags\"'\n",                  # JSON, but not a list
    "  freescout:modules: {tags: true}\n",
    "  freescout:modules: ''\n",
], ids=["null", "number", "mapping-item", "nested-list", "comma-list", "json-string", "mapping",
        "empty-string"])
def test_a_module_list_of_the_wrong_shape_is_refused(project: Path, lines: str) -> None:
    text = refused(write(project, with_modules(lines)))
    assert "freescout:modules" in text
    assert "pulumi config set --stack prod freescout:modules '[\"api_webhooks\"," in text
    assert "Traceback" not in text


@pytest.mark.parametrize(("lines", "words"), [
    ("  freescout:modules:\n    - tags\n    - wiki\n", ["'wiki' is not a module",
                                                       "freescout:modules '[\"tags\"]'"]),
    ("  freescout:modules:\n    - workflows\n", ["'workflows' needs tags, custom_fields"]),
    ("  freescout:modules:\n    - tags\n    - tags\n", ["lists tags more than once"]),
])
def test_module_choices_the_program_refuses(project: Path, lines: str, words: list[str]) -> None:
    text = refused(write(project, with_modules(lines)))
    for word in words:
        assert word in text, text


@pytest.mark.parametrize(("text", "words"), [
    ("- a\n- b\n", ["holds a list, not a mapping"]),
    ("just text\n", ["holds a text, not a mapping"]),
    ("42\n", ["holds a number"]),
    ("config:\n  - a\n", ["`config` holds a list"]),
    ("config: 5\n", ["`config` holds a number"]),
    ("config:\n  hostname: x\n", ["'hostname' lack a namespace", "freescout:<key>"]),
    (PROD + "\n  : : [\n", ["not valid YAML"]),
    (PROD.replace("  freescout:hostname", "\tfreescout:hostname"), ["not valid YAML", "tabs"]),
    (PROD + "  freescout:hostname: other.raxx.app\n", ["'freescout:hostname' is written twice"]),
    ("config:\n  freescout:hostname: caf\xe9\n", ["not valid YAML"]),
], ids=["top-list", "top-text", "top-number", "config-list", "config-number", "no-namespace",
        "syntax", "tab", "duplicate-key", "not-utf8"])
def test_a_file_of_the_wrong_shape_is_exit_2(project: Path, text: str,
                                             words: list[str]) -> None:
    path = project / "Pulumi.prod.yaml"
    # The last case is written as latin-1: its bytes are not UTF-8.
    path.write_bytes(text.encode("utf-8" if text.isascii() else "latin-1"))
    for read in (load_target, read_config):
        with pytest.raises(UsageError) as caught:
            read(project, "prod")
        assert caught.value.exit_code == exitcodes.USAGE
        for word in words:
            assert word in caught.value.render(), caught.value.render()
        assert caught.value.hint, "says what to do next"


@pytest.mark.parametrize(("old", "new", "key"), [
    ("instance_name: raxx-tickets", "instance_name: 'raxx tickets;rm -rf'", "instance_name"),
    ("instance_name: raxx-tickets", "instance_name: [a, b]", "instance_name"),
    ("instance_name: raxx-tickets", "instance_name: {a: b}", "instance_name"),
    ("instance_name: raxx-tickets", "instance_name: -raxx", "instance_name"),
    ("instance_name: raxx-tickets", "instance_name: ''", "instance_name"),
    ("instance_name: raxx-tickets", "instance_name:", "instance_name"),
    ("static_ip_name: raxx-tickets-ip", "static_ip_name: ip/../x", "static_ip_name"),
    ("static_ip_name: raxx-tickets-ip", "static_ip_name: [ip]", "static_ip_name"),
    ("hostname: tickets.raxx.app", "hostname: 'https://tickets.raxx.app/'", "hostname"),
    ("hostname: tickets.raxx.app", "hostname: 'tickets.raxx.app; reboot'", "hostname"),
    ("hostname: tickets.raxx.app", "hostname: [tickets.raxx.app]", "hostname"),
    ("availability_zone: us-east-1a", "availability_zone: [x]", "availability_zone"),
    ("availability_zone: us-east-1a", "availability_zone: eu-west-1a", "availability_zone"),
    ("bundle_id: micro_3_0", "bundle_id: 'micro 3'", "bundle_id"),
])
def test_names_are_checked_as_the_program_checks_them(project: Path, old: str, new: str,
                                                      key: str) -> None:
    text = refused(write(project, replaced(old, new)))
    assert f"- freescout:{key}:" in text, text
    assert f"fix: pulumi config set --stack prod freescout:{key} " in text, text


def test_the_same_names_are_refused_by_the_program(project: Path) -> None:
    """One rule: what load_target refuses, the program's validate refuses with the same fix."""
    write(project, replaced("instance_name: raxx-tickets", "instance_name: 'a;b'"))
    found = settings.read_stack_file(project, "prod")
    program = {p.key: p.fix for p in settings.validate(found.values, found.encrypted)}
    assert program["freescout:instance_name"] == \
        "pulumi config set freescout:instance_name raxx-tickets"
    assert "--stack prod freescout:instance_name raxx-tickets" in refused(project)


@pytest.mark.parametrize("key", ["instance_name", "static_ip_name", "hostname",
                                 "availability_zone", "bundle_id"])
def test_a_missing_name_is_named(project: Path, key: str) -> None:
    line = next(x for x in PROD.splitlines(keepends=True) if f"freescout:{key}:" in x)
    text = refused(write(project, PROD.replace(line, "")))
    assert f"- freescout:{key}: is not set" in text
    assert f"pulumi config set --stack prod freescout:{key} " in text


def test_an_encrypted_name_cannot_be_read_and_is_named(project: Path) -> None:
    write(project, replaced("instance_name: raxx-tickets",
                            "instance_name:\n    secure: v1:AAAA"))
    text = refused(project)
    assert "freescout:instance_name: is stored encrypted" in text
    assert "pulumi config set --stack prod freescout:instance_name raxx-tickets" in text


@pytest.mark.parametrize("value", ["'no'", "no", "'yes'", "0", "1", "[true]", "maybe"])
def test_protect_must_be_true_or_false(project: Path, value: str) -> None:
    text = refused(write(project, replaced("protect: true", f"protect: {value}")))
    assert "freescout:protect" in text and "is not true or false" in text
    assert "pulumi config set --stack prod freescout:protect true" in text


@pytest.mark.parametrize("value", ["true", "false", "'true'", "False", "TRUE"])
def test_protect_booleans_are_accepted(project: Path, value: str) -> None:
    write(project, replaced("protect: true", f"protect: {value}"))
    assert load_target(project, "prod").instance_name == "raxx-tickets"


@pytest.mark.parametrize("line", ["", "  freescout:protect:\n", "  freescout:protect: ''\n"])
def test_protect_may_be_left_unset(project: Path, line: str) -> None:
    """Unset is the safe default (protected), for the program as for the tools."""
    write(project, replaced("  freescout:protect: true\n", line))
    assert load_target(project, "prod").instance_name == "raxx-tickets"
    found = settings.read_stack_file(project, "prod")
    filled = {**found.values, settings.MODULES_KEY: "[]", "freescout:cloudflare_zone_id": "0" * 32}
    assert settings.build(filled).protect is True


@pytest.mark.parametrize("value", ["REPLACE_WITH_NAME", "replace_with_name"])
def test_a_placeholder_in_any_case_is_named(project: Path, value: str) -> None:
    text = refused(write(project, replaced("instance_name: raxx-tickets",
                                           f"instance_name: {value}")))
    assert "freescout:instance_name: holds a placeholder" in text


def test_every_problem_at_once(project: Path) -> None:
    text = PROD.replace("instance_name: raxx-tickets", "instance_name: 'a b'")
    text = text.replace("protect: true", "protect: 'no'")
    text = text.replace(MODULE_LINES, "  freescout:modules: 5\n")
    rendered = refused(write(project, text))
    assert "3 problem(s)" in rendered
    for key in ("freescout:instance_name", "freescout:protect", "freescout:modules"):
        assert f"- {key}:" in rendered


def test_problems_of_other_keys_are_left_to_pulumi_up(project: Path) -> None:
    """Unset secrets and the zone id do not stop a restore: only the keys the tools act on."""
    write(project, PROD + "  freescout:license_tags: in-plain-text\n"
          "  freescout:cloudflare_zone_id: REPLACE_WITH_ZONE\n")
    assert load_target(project, "prod").hostname == "tickets.raxx.app"


def test_config_value_reads_the_value_as_written(project: Path) -> None:
    assert config_value(project, "prod", "aws:region") == "us-east-1"
    assert config_value(project, "prod", "freescout:protect") is True
    assert config_value(project, "prod", "freescout:nope", "dflt") == "dflt"


def test_no_stack_file_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        load_target(tmp_path, "staging")
    assert "pulumi stack init staging" in caught.value.render()


def _never(*_args: object) -> object:
    raise AssertionError("no adapter may be built for a refused stack file")


@pytest.mark.parametrize("text", [
    replaced("instance_name: raxx-tickets", "instance_name: 'raxx tickets;rm -rf'"),
    replaced("protect: true", "protect: 'no'"),
    with_modules("  freescout:modules:\n"),
    "- a\n",
], ids=["bad-name", "bad-protect", "null-modules", "top-list"])
def test_rebuild_and_restore_exit_2_before_touching_anything(project: Path, text: str,
                                                             capsys) -> None:
    write(project, text)
    runs = ["--runs-dir", str(project / ".runs"), "--postmortem-dir", str(project / "pm")]
    assert rebuild_main(["--dry-run", *runs], adapter_factory=_never,
                        project_root=project) == exitcodes.USAGE
    assert restore_main(["--stack", "prod"], adapter_factory=_never, project_root=project,
                        confirm=lambda _q: True) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err
    assert not (project / ".runs").exists() or not any((project / ".runs").iterdir())


def test_an_absent_module_list_is_no_module_for_the_tools(project: Path) -> None:
    """restore needs none (the snapshot holds them); the program itself refuses an absent list."""
    write(project, with_modules(""))
    assert load_target(project, "prod").module_aliases == ()
    found = settings.read_stack_file(project, "prod")
    assert ("freescout:modules", "missing") in {
        (p.key, p.kind) for p in settings.validate(found.values, found.encrypted)}


# Values whose reading differs between YAML parsers or type systems: PyYAML alone would call
# `no` false, keep 1.0 as "1.0", a date as "2024-01-01" and an empty value as None.
TRICKY = """\
config:
  aws:region: us-east-1
  freescout:protect: no
  freescout:admin_email: yes
  freescout:instance_name: 12345
  freescout:ssh_user:
  freescout:freescout_ref: 2024-01-01
  freescout:bundle_id: 1.0
  freescout:blueprint_id: 1.25
  freescout:hostname: TRUE
  freescout:availability_zone: [us-east-1a, {a: 1.0, b: no}, ~, false]
  freescout:static_ip_name: '["x"]'
  freescout:license_tags:
    secure: v1:AAAA
"""


@pytest.mark.engine
def test_values_are_read_as_the_pulumi_cli_reads_them(tmp_path: Path) -> None:
    """The real CLI's `pulumi config --json` against settings.read_stack_file, value by value;
    then the README's modules command through the real CLI, read back by load_target."""
    cli = find_tool("pulumi")
    need(cli is not None, "the Pulumi CLI", "run 'sh tools/setup.sh' (it builds it with Go)")
    assert cli is not None
    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", work / "Pulumi.yaml")
    (work / "Pulumi.prod.yaml").write_text(TRICKY, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(PULUMI_BACKEND_URL=f"file://{tmp_path / 'backend'}",
               PULUMI_HOME=str(tmp_path / "home"), PULUMI_CONFIG_PASSPHRASE="test-only",
               PULUMI_SKIP_UPDATE_CHECK="true")
    (tmp_path / "backend").mkdir()

    def pulumi(*args: str) -> str:
        done = subprocess.run([cli, *args, "--stack", "prod", "--non-interactive"], cwd=work,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"pulumi {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    pulumi("stack", "init", "--secrets-provider", "passphrase")
    # `stack init` rewrites the file in its own normal form: put ours back, with its salt.
    salt = next(line for line in (work / "Pulumi.prod.yaml").read_text().splitlines()
                if line.startswith("encryptionsalt:"))
    (work / "Pulumi.prod.yaml").write_text(TRICKY + salt + "\n", encoding="utf-8")
    found = settings.read_stack_file(work, "prod")
    engine = {k: v["value"] for k, v in json.loads(pulumi("config", "--json")).items()
              if not v["secret"]}
    ours = {k: v for k, v in found.values.items() if k not in found.encrypted}
    assert ours == engine
    assert found.encrypted == {"freescout:license_tags"}

    write(work, PROD)
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    stored = re.search(r"pulumi config set freescout:modules '(\[[^']*\])'", readme)
    assert stored, "the README shows how to choose modules"
    pulumi("config", "rm", "freescout:modules")
    pulumi("config", "set", "freescout:modules", stored.group(1))
    assert "freescout:modules: '[" in (work / "Pulumi.prod.yaml").read_text(encoding="utf-8")
    assert load_target(work, "prod").module_aliases == ("customfields", "tags", "workflows")
