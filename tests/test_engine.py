"""The real Pulumi engine (built from Go modules) against the stand-in stack.

What this proves, with the real CLI, a local file backend and Python dynamic providers standing in
for the cloud: a protected instance blocks its own replacement and nothing changes; with protect
off the instance is replaced delete-first while the protected static IP and DNS record keep their
ids; protect back on leaves a preview with no changes; a program change that would replace the
static IP shows as a replace step of it. What it does not prove: how AWS, Cloudflare or SSH behave
(the dynamic providers only reproduce the replace/update shape of the real providers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from operations import guard
from tests.conftest import ENGINE_BIN, PROJECT_ROOT, find_tool, need
from tests.engine_project import cloud
from tests.engine_project.stack import PASSPHRASE, StandinPaths, standin_stack

pytestmark = pytest.mark.engine

INSTANCE = "pulumi-python:dynamic/standin:Instance"
STATIC_IP = "pulumi-python:dynamic/standin:StaticIp"
DNS = "pulumi-python:dynamic/standin:DnsRecord"


def engine_cli() -> str:
    path = find_tool("pulumi")
    need(path is not None, "the Pulumi CLI", "run 'sh tools/setup.sh' (it builds it with Go)")
    assert path is not None
    return path


def state_resources(stack: auto.Stack) -> dict[str, dict[str, Any]]:
    """URN -> the parts of the state a change would touch (id, protect, inputs, outputs).

    Pulumi's provider resources are left out: a dynamic provider's inputs are the whole stack
    config, which the engine records even in an update that then fails; they own no cloud object.
    """
    resources = stack.export_stack().deployment["resources"]
    return {
        r["urn"]: {k: r.get(k) for k in ("id", "protect", "inputs", "outputs")}
        for r in resources
        if not r["type"].startswith("pulumi:providers:")
    }


def urn_of(stack: auto.Stack, type_token: str) -> str:
    return next(u for u in state_resources(stack) if u.split("::")[2] == type_token)


def cloud_id(paths: StandinPaths, kind: str) -> str:
    ids = [i for i, r in cloud.read(paths.cloud)["resources"].items() if r["kind"] == kind]
    assert len(ids) == 1, f"expected one {kind} in the stand-in cloud, found {ids}"
    return ids[0]


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the rebuild's engine story once on one stack; the tests assert on what it recorded."""
    cli = engine_cli()
    root = tmp_path_factory.mktemp("standin")
    paths = StandinPaths(root)
    stack = standin_stack(root, cli)
    seen: dict[str, Any] = {"paths": paths}
    stack.up()
    seen["ids_before"] = {k: cloud_id(paths, k) for k in ("Instance", "StaticIp", "DnsRecord")}
    instance_urn = urn_of(stack, INSTANCE)
    seen["protected_at_start"] = state_resources(stack)[instance_urn]["protect"]

    # 1. A new user_data version forces a replacement; the instance is protected.
    stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    cloud_before = cloud.read(paths.cloud)
    state_before = state_resources(stack)
    try:
        stack.up()
        seen["protected_up_error"] = None
    except auto.errors.CommandError as error:
        seen["protected_up_error"] = str(error)
    seen["protected_up_cloud_unchanged"] = cloud.read(paths.cloud) == cloud_before
    seen["protected_up_state_unchanged"] = state_resources(stack) == state_before

    # 2. Protect off (config), then up: the replacement happens in the same update.
    stack.set_config("freescout:protect", auto.ConfigValue("false"))
    log_start = len(cloud.read(paths.cloud)["log"])
    seen["replace_summary"] = stack.up().summary.resource_changes
    seen["replace_log"] = cloud.read(paths.cloud)["log"][log_start:]
    seen["ids_after"] = {k: cloud_id(paths, k) for k in ("Instance", "StaticIp", "DnsRecord")}
    seen["protected_after_unprotected_up"] = state_resources(stack)[instance_urn].get("protect")

    # 3. Protect back on: only an up writes the bit; then a preview must show no changes.
    stack.set_config("freescout:protect", auto.ConfigValue("true"))
    stack.up()
    seen["protected_after_reprotect"] = state_resources(stack)[instance_urn].get("protect")
    try:
        stack.preview(expect_no_changes=True)
        seen["no_changes_error"] = None
    except auto.errors.CommandError as error:
        seen["no_changes_error"] = str(error)

    # 4. A program change that would replace the static IP (which is protected).
    stack.set_config("standin:replace_static_ip", auto.ConfigValue("true"))
    events: list[Any] = []
    try:
        stack.preview(on_event=events.append)
        seen["static_ip_preview_error"] = None
    except auto.errors.CommandError as error:
        seen["static_ip_preview_error"] = str(error)
    seen["static_ip_steps"], seen["static_ip_errors"] = guard.steps_from_engine_events(events)
    seen["static_ip_urn"] = urn_of(stack, STATIC_IP)
    stack.remove_config("standin:replace_static_ip")
    return seen


def test_protected_instance_blocks_its_replacement_and_nothing_changes(lifecycle):
    assert lifecycle["protected_at_start"] is True, "protect defaults to true from config"
    error = lifecycle["protected_up_error"]
    assert error is not None, "an up that replaces the protected instance must fail"
    assert "unable to replace resource" in error and "marked for protection" in error
    assert INSTANCE in error
    assert lifecycle["protected_up_cloud_unchanged"], "the failed up touched the stand-in cloud"
    assert lifecycle["protected_up_state_unchanged"], "the failed up changed the stack's state"


def test_unprotected_up_replaces_the_instance_delete_first(lifecycle):
    before, after = lifecycle["ids_before"], lifecycle["ids_after"]
    assert after["Instance"] != before["Instance"], "the instance was not replaced"
    log = [tuple(entry) for entry in lifecycle["replace_log"]]
    delete_old = log.index(("delete", "Instance", before["Instance"]))
    create_new = log.index(("create", "Instance", after["Instance"]))
    assert delete_old < create_new, f"replacement created before the old one was deleted: {log}"
    # Ports, attachment and the three provisioning commands follow the instance.
    assert lifecycle["replace_summary"].get("replace") == 6, lifecycle["replace_summary"]
    assert sum(1 for op, kind, _ in log if op == "create" and kind == "Command") == 3
    # The same update unprotected it: the state carries no protect bit until re-protected.
    assert not lifecycle["protected_after_unprotected_up"]


def test_static_ip_and_dns_record_survive_the_rebuild(lifecycle):
    before, after = lifecycle["ids_before"], lifecycle["ids_after"]
    assert after["StaticIp"] == before["StaticIp"]
    assert after["DnsRecord"] == before["DnsRecord"]
    log = [tuple(entry) for entry in lifecycle["replace_log"]]
    assert not [e for e in log if e[1] in ("StaticIp", "DnsRecord")], log


def test_reprotect_up_writes_the_bit_and_preview_shows_no_changes(lifecycle):
    assert lifecycle["protected_after_reprotect"] is True
    assert lifecycle["no_changes_error"] is None, lifecycle["no_changes_error"]


def test_static_ip_replacement_shows_as_a_replace_step(lifecycle):
    urn = lifecycle["static_ip_urn"]
    ops = {s.op for s in lifecycle["static_ip_steps"] if s.urn == urn}
    assert "replace" in ops, f"no replace step for {urn}: {ops}"
    # The static IP is protected, so the engine also refuses the plan.
    assert any(urn in e and "marked for protection" in e for e in lifecycle["static_ip_errors"])


# ---------------------------------------------------------------- the project's own files


def _cli_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(
        PULUMI_BACKEND_URL=f"file://{tmp / 'backend'}",
        PULUMI_HOME=str(tmp / "home"),
        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
    )
    return env


def test_project_files_load_and_config_round_trips(tmp_path):
    """The real Pulumi.yaml and Pulumi.prod.yaml under the engine: plain and secret config."""
    cli = engine_cli()
    project, stack_file = PROJECT_ROOT / "Pulumi.yaml", PROJECT_ROOT / "Pulumi.prod.yaml"
    need(
        project.is_file() and stack_file.is_file(), "Pulumi.yaml / Pulumi.prod.yaml", "commit them"
    )
    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(project, work / "Pulumi.yaml")
    # The operator's encryption salt belongs to their passphrase, not to this test's: drop it from
    # the copy so `stack init` makes one for ours (the real stack file is never touched).
    lines = stack_file.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = "".join(ln for ln in lines if not ln.startswith("encryptionsalt:"))
    (work / "Pulumi.prod.yaml").write_text(kept, encoding="utf-8")
    (tmp_path / "backend").mkdir()
    env = _cli_env(tmp_path)

    def pulumi(*args: str) -> str:
        done = subprocess.run(
            [cli, *args, "--non-interactive"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"pulumi {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    pulumi("stack", "init", "prod", "--secrets-provider", "passphrase")
    before = json.loads(pulumi("config", "--stack", "prod", "--json"))
    assert before, "the stack file's config did not load"
    pulumi("config", "set", "--stack", "prod", "freescout:roundtrip_plain", "plain-value")
    # The secret goes in on stdin: never in a process argument.
    subprocess.run(
        [cli, "config", "set", "--secret", "--stack", "prod", "freescout:roundtrip_secret",
         "--non-interactive"],
        cwd=work, env=env, input="s3cret-value", capture_output=True, text=True, check=True,
        timeout=120,
    )  # fmt: skip
    after = json.loads(pulumi("config", "--stack", "prod", "--json"))
    assert after["freescout:roundtrip_plain"]["value"] == "plain-value"
    assert after["freescout:roundtrip_secret"]["secret"] is True
    assert "s3cret-value" not in json.dumps(after), "a secret was shown without --show-secrets"
    plain = pulumi("config", "get", "--stack", "prod", "freescout:roundtrip_plain")
    secret = pulumi("config", "get", "--stack", "prod", "freescout:roundtrip_secret")
    assert (plain.strip(), secret.strip()) == ("plain-value", "s3cret-value")
    for key, entry in before.items():
        assert key in after and after[key].get("secret") == entry.get("secret"), key
    stored = (work / "Pulumi.prod.yaml").read_text(encoding="utf-8")
    assert "s3cret-value" not in stored, "the secret was written in plain text"
    assert "plain-value" in stored


# ---------------------------------------------------------------- the build's helpers


def test_dynamic_provider_plugin_finds_a_python_with_pulumi(tmp_path):
    """The wrapper from tools/engine/build.sh starts the provider without any PULUMI_* help."""
    engine_cli()
    plugin = ENGINE_BIN / "pulumi-resource-pulumi-python"
    need(plugin.is_file(), "the dynamic-provider plugin", "run 'sh tools/engine/build.sh'")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no venv on PATH
    proc = subprocess.Popen(
        [str(plugin)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert port.isdigit(), f"the plugin did not announce a port: {port!r} {proc.stderr.read()}"
