"""scripts/plan.py: the real program on the real stack file under the mock runtime.

Runs the script as an operator would (a subprocess, on the committed Pulumi.prod.yaml with no
secret set), and its entry point in-process for the error cases on temporary stack files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from freescout import modules as catalog
from freescout import userdata
from freescout.offline_plan import main
from operations import exitcodes
from tests.conftest import PROJECT_ROOT

PLAN = PROJECT_ROOT / "scripts" / "plan.py"


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    return subprocess.run([sys.executable, str(PLAN), *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env=env, timeout=300)


@pytest.fixture(scope="module")
def text_plan() -> subprocess.CompletedProcess[str]:
    return run_plan()


@pytest.fixture(scope="module")
def json_plan() -> subprocess.CompletedProcess[str]:
    return run_plan("--stack", "prod", "--json")


def test_text_plan_of_prod_shows_the_whole_stack(text_plan) -> None:
    assert text_plan.returncode == exitcodes.OK, text_plan.stderr
    out = text_plan.stdout
    for count, type_ in ((1, "aws:lightsail/instance:Instance"),
                         (1, "aws:lightsail/instancePublicPorts:InstancePublicPorts"),
                         (1, "aws:lightsail/staticIp:StaticIp"),
                         (1, "aws:lightsail/staticIpAttachment:StaticIpAttachment"),
                         (3, "aws:ssm/parameter:Parameter"),
                         (1, "cloudflare:index/dnsRecord:DnsRecord"),
                         (13, "command:remote:Command"), (3, "command:local:Command")):
        assert f"{count:>2} x {type_}" in out, type_
    assert "module installs: 10" in out
    assert "freescout-instance  [protect=yes, delete-before-replace=yes]" in out
    assert "freescout-static-ip  [protect=yes, delete-before-replace=no]" in out
    assert "freescout-ports  [protect=no, delete-before-replace=no]" in out
    order = [out.index(f"freescout-{step}  [") for step in (
        "wait-for-ssh", "wait-for-cloud-init", "configure", "pre-install-snapshot", "module-tags",
        "module-workflows", "cache-clear", "post-install-snapshot")]
    assert order == sorted(order), "the chain prints in creation order"


def test_text_plan_lists_unset_secrets_and_zone_at_the_end(text_plan) -> None:
    out = text_plan.stdout
    tail = out[out.index("Unset settings"):]
    assert "pulumi config set freescout:cloudflare_zone_id" in tail
    secrets = out[out.index("Unset secrets"):]
    assert "pulumi config set --secret cloudflare:apiToken" in secrets
    for module in catalog.CATALOG:
        assert f"pulumi config set --secret freescout:{module.license_key}  (" in secrets
    assert "plan stand-in" not in out[: out.index("Resources:")], "stand-ins stay masked"


def test_json_plan_parses_with_required_keys(json_plan) -> None:
    assert json_plan.returncode == exitcodes.OK, json_plan.stderr
    resources = json.loads(json_plan.stdout)
    assert isinstance(resources, list)
    urns = {r["urn"] for r in resources}
    for r in resources:
        assert {"type", "name", "urn", "protect", "deleteBeforeReplace", "dependsOn",
                "inputs"} <= set(r), r["urn"]
        assert set(r["dependsOn"]) <= urns, f"{r['urn']}: dependsOn names unknown URNs"
    counts = Counter(r["type"] for r in resources)
    assert counts["aws:lightsail/instance:Instance"] == 1
    assert counts["aws:ssm/parameter:Parameter"] == 3
    assert counts["cloudflare:index/dnsRecord:DnsRecord"] == 1
    modules = [r for r in resources if "-module-" in r["name"]]
    assert len(modules) == 10
    seen: set[str] = set()
    for r in resources:
        assert set(r["dependsOn"]) <= seen, f"{r['urn']} printed before what it depends on"
        seen.add(r["urn"])


def test_json_instance_carries_the_linted_user_data(json_plan) -> None:
    resources = json.loads(json_plan.stdout)
    (instance,) = [r for r in resources if r["type"] == "aws:lightsail/instance:Instance"]
    assert instance["inputs"]["userData"] == userdata.render("tickets.raxx.app"), instance["urn"]
    assert instance["protect"] is True and instance["deleteBeforeReplace"] is True


def test_json_masks_every_secret(json_plan) -> None:
    resources = json.loads(json_plan.stdout)
    for r in resources:
        if r["type"] == "command:remote:Command":
            assert r["inputs"]["connection"] == "[secret]", r["urn"]
            if r["name"] != "freescout-wait-for-cloud-init" and "cache-clear" not in r["name"]:
                assert r["inputs"]["stdin"] == "[secret]", r["urn"]
        if r["type"] == "aws:ssm/parameter:Parameter":
            assert r["inputs"]["value"] == "[secret]", r["urn"]
    assert "stand-in" not in json_plan.stdout
    assert "Unset secrets" in json_plan.stderr


def write_stack(tmp_path: Path, name: str, extra: str) -> Path:
    base = (PROJECT_ROOT / "Pulumi.prod.yaml").read_text()
    (tmp_path / f"Pulumi.{name}.yaml").write_text(base + extra)
    return tmp_path


def test_config_problems_other_than_unset_stop_the_plan(tmp_path: Path, capsys) -> None:
    project = write_stack(tmp_path, "bad",
                          "  freescout:cloudflare_zone_id: REPLACE_WITH_TF_VAR_zone\n"
                          "  freescout:licence_tags: typo\n")
    assert main(["--stack", "bad"], project) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "freescout:cloudflare_zone_id: holds a placeholder" in err
    assert "pulumi config set freescout:cloudflare_zone_id" in err
    assert "pulumi config rm freescout:licence_tags" in err
    assert "pulumi config set --secret freescout:license_tags" in err, "unset ones listed too"


def test_encrypted_values_count_as_set(tmp_path: Path, capsys) -> None:
    project = write_stack(tmp_path, "enc", "  freescout:license_tags:\n    secure: v1:abc\n"
                          "  freescout:cloudflare_zone_id: 0123456789abcdef0123456789abcdef\n")
    assert main(["--stack", "enc"], project) == exitcodes.OK
    out = capsys.readouterr().out
    assert "Encrypted in the stack file (set; not decrypted here): freescout:license_tags" in out
    assert "freescout:license_tags:" not in out[out.index("Unset secrets"):]
    assert "Unset settings" not in out


def test_missing_stack_file(tmp_path: Path, capsys) -> None:
    assert main(["--stack", "nope"], tmp_path) == exitcodes.USAGE
    assert "pulumi stack init nope" in capsys.readouterr().err


PROD = (PROJECT_ROOT / "Pulumi.prod.yaml").read_text()
MODULE_LINES = PROD[PROD.index("  freescout:modules:"):]


def plan_of(tmp_path: Path, text: str, capsys) -> tuple[int, str, str]:
    """scripts/plan.py's entry point on a stack file holding `text`: (exit code, out, err)."""
    (tmp_path / "Pulumi.t.yaml").write_text(text)
    code = main(["--stack", "t"], tmp_path)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("text", "words"), [
    ("", ["Pulumi.t.yaml holds no config", "- freescout:hostname: is not set",
          "fix: pulumi config set freescout:hostname tickets.raxx.app"]),
    ("config:\n", ["holds no config"]),
    ("- a\n- b\n", ["Pulumi.t.yaml holds a list, not a mapping"]),
    ("tickets\n", ["holds a text, not a mapping"]),
    ("config: [a]\n", ["`config` holds a list"]),
    (PROD.replace("availability_zone: us-east-1a", "availability_zone: [x]"),
     ["- freescout:availability_zone: '[\"x\"]' is malformed",
      "fix: pulumi config set freescout:availability_zone us-east-1a"]),
    (PROD.replace("protect: true", "protect: 'no'"),
     ["- freescout:protect: 'no' is not true or false",
      "fix: pulumi config set freescout:protect true"]),
    (PROD.replace("protect: true", "protect: no"), ["- freescout:protect: 'no' is not true"]),
    (PROD.replace(MODULE_LINES, "  freescout:modules:\n"),
     ["- freescout:modules: is empty", "fix: pulumi config set freescout:modules '["]),
    (PROD.replace(MODULE_LINES, "  freescout:modules: tags,custom_fields\n"),
     ["- freescout:modules: 'tags,custom_fields' is not a list"]),
    (PROD.replace("instance_name: raxx-tickets", "instance_name: [a, b]"),
     ["- freescout:instance_name: '[\"a\",\"b\"]' is malformed"]),
], ids=["empty-file", "empty-config", "top-list", "top-text", "config-list", "zone-list",
        "protect-quoted-no", "protect-bare-no", "modules-null", "modules-comma", "name-list"])
def test_config_of_the_wrong_type_is_exit_2_naming_key_and_fix(tmp_path: Path, capsys,
                                                                text: str,
                                                                words: list[str]) -> None:
    code, out, err = plan_of(tmp_path, text, capsys)
    assert code == exitcodes.USAGE, err
    for word in words:
        assert word in err, err
    assert "Traceback" not in err + out and out == ""


def test_the_readme_modules_command_plans_those_modules(tmp_path: Path, capsys) -> None:
    """`pulumi config set freescout:modules '[...]'` stores a JSON string: read as a list."""
    text = PROD.replace(MODULE_LINES,
                        "  freescout:modules: '[\"tags\",\"custom_fields\",\"workflows\"]'\n")
    code, out, err = plan_of(tmp_path, text, capsys)
    assert code == exitcodes.OK, err
    assert "module installs: 3" in out
    assert out.index("freescout-module-tags") < out.index("freescout-module-workflows")


def test_an_unset_host_name_is_stood_in_for(tmp_path: Path, capsys) -> None:
    """The stand-in goes into user_data, so it must be sh-safe: no traceback, exit 0."""
    code, out, err = plan_of(tmp_path, PROD.replace("  freescout:hostname: tickets.raxx.app\n",
                                                    ""), capsys)
    assert code == exitcodes.OK, err
    tail = out[out.index("Unset settings"):]
    assert "pulumi config set freescout:hostname tickets.raxx.app" in tail
