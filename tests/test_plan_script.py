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
