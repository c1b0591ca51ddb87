"""operations.engine.AutomationEngine against the real Pulumi engine and the stand-in stack.

Proves, with the real CLI and a file backend: the protection error comes back as
PreviewResult.error (not an exception) with the replace steps; a held stack lock is StackLocked;
a provisioning step failing with an SSH reset is TransientError and a second `up` finishes the
replacement; the protect bit read from the exported state follows the `up`s; secrets stay out of
progress lines, errors and outputs. What it does not prove: how the real providers word their
SSH errors (the stand-in uses OpenSSH/Go's wording, "ssh: handshake failed ... connection reset
by peer"), nor the lock message of the Pulumi Cloud backend (only the file backend's is exercised).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi import automation as auto

from operations import guard
from operations.engine import AutomationEngine
from operations.errors import OpsError, StackLocked, TransientError
from tests.conftest import find_tool, need
from tests.engine_project import cloud
from tests.engine_project.program import INSTANCE_RESOURCE, PROJECT
from tests.engine_project.roles import STANDIN_ROLES
from tests.engine_project.stack import StandinPaths, standin_stack

pytestmark = pytest.mark.engine

SECRET = "Tr0ub4dor-standin-secret"


class Setup:
    def __init__(self, root: Path, cli: str) -> None:
        self.paths = StandinPaths(root)
        self.stack = standin_stack(root, cli, stack_name="adapter")
        self.stack.set_config("standin:db_password", auto.ConfigValue(SECRET, secret=True))
        self.lines: list[str] = []
        self.engine = AutomationEngine(
            self.stack, instance=INSTANCE_RESOURCE, on_progress=self.lines.append
        )

    def instance_id(self) -> str:
        data = cloud.read(self.paths.cloud)
        return next(i for i, r in data["resources"].items() if r["kind"] == "Instance")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    cli = find_tool("pulumi")
    need(cli is not None, "the Pulumi CLI", "run 'sh tools/setup.sh' (it builds it with Go)")
    assert cli is not None
    s = Setup(tmp_path_factory.mktemp("adapter"), cli)
    s.engine.up()
    return s


def test_fresh_stack_has_the_instance_protected(setup):
    assert setup.engine.instance_protected() is True
    assert setup.engine.instance_urn() == (
        f"urn:pulumi:adapter::{PROJECT}::pulumi-python:dynamic/standin:Instance::{INSTANCE_RESOURCE}"
    )
    assert setup.engine.preview_expect_no_changes() is True


def test_outputs_mask_secrets(setup):
    outputs = setup.engine.outputs()
    assert outputs["instance_id"] == setup.instance_id()
    assert outputs["db_password"] == "[secret]"


def test_protection_error_is_a_preview_result(setup):
    setup.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    result = setup.engine.preview()
    assert result.error is not None and "marked for protection" in result.error
    assert setup.engine.instance_urn() in result.error
    ops = {(s.urn.rsplit("::", 1)[-1], s.op) for s in result.steps}
    assert (INSTANCE_RESOURCE, "replace") in ops
    assert result.change_summary == {"replace": 6, "same": 3}
    report = guard.judge(result.steps, errors=[result.error], roles=STANDIN_ROLES)
    assert report.verdict is guard.Verdict.REBUILD, guard.render(report)


def test_config_change_is_not_no_changes(setup):
    # Protect off is a change of the stack config the engine sees (the provider's inputs).
    setup.engine.set_protect(False)
    try:
        assert setup.engine.preview_expect_no_changes() is False
    finally:
        setup.engine.set_protect(True)


def test_locked_stack_is_stack_locked(setup):
    # The file backend locks a stack with a JSON file under .pulumi/locks/<org>/<project>/<stack>/
    # (pkg/backend/diy/lock.go); this is one left by an update in another process.
    locks = setup.paths.backend / ".pulumi" / "locks" / "organization" / PROJECT / "adapter"
    locks.mkdir(parents=True, exist_ok=True)
    lock = locks / "b1f0c2de-other-update.json"
    lock.write_text(
        json.dumps(
            {
                "pid": 4242,
                "username": "ops",
                "hostname": "laptop",
                "timestamp": "2025-01-01T00:00:00Z",
            }
        )
    )
    before = cloud.read(setup.paths.cloud)
    try:
        with pytest.raises(StackLocked) as caught:
            setup.engine.up()
    finally:
        lock.unlink()
    assert "the stack is currently locked by 1 lock(s)" in (caught.value.cause or "")
    assert "pulumi cancel" in (caught.value.hint or "")
    assert cloud.read(setup.paths.cloud) == before


def test_transient_ssh_failure_then_retry_replaces_the_instance(setup):
    old_id = setup.instance_id()
    setup.engine.set_protect(False)
    setup.stack.set_config("standin:fail_ssh_times", auto.ConfigValue("1"))
    setup.lines.clear()
    with pytest.raises(TransientError) as caught:
        setup.engine.up()
    assert "connection reset by peer" in (caught.value.cause or "")
    assert cloud.ssh_failures(setup.paths.cloud) == 1
    # The instance was already replaced when provisioning failed; the next up finishes the rest.
    result = setup.engine.up()
    assert setup.instance_id() != old_id
    assert set(result.change_summary) - {"same"}, result.change_summary
    commands = [
        r for r in cloud.read(setup.paths.cloud)["resources"].values() if r["kind"] == "Command"
    ]
    assert len(commands) == 3
    assert all(c["inputs"]["triggers"] == [setup.instance_id()] for c in commands), commands
    assert setup.engine.instance_protected() is False
    assert any(
        "create-replacement pulumi-python:dynamic/standin:Instance raxx-tickets" in ln
        for ln in setup.lines
    ), setup.lines
    everything = "\n".join([*setup.lines, caught.value.render()])
    assert SECRET not in everything


def test_reprotect_up_sets_the_bit(setup):
    setup.stack.remove_config("standin:fail_ssh_times")
    setup.engine.set_protect(True)
    assert setup.engine.instance_protected() is False, "config alone must not set the state bit"
    setup.engine.up()
    assert setup.engine.instance_protected() is True
    assert setup.engine.preview_expect_no_changes() is True
    result = setup.engine.preview()
    assert result.error is None
    assert {s.op for s in result.steps} == {"same"}


def test_other_failures_are_ops_errors_with_the_engine_output(setup):
    with pytest.raises(OpsError) as caught:
        setup.engine.up(targets=["urn:pulumi:adapter::standin::no:such:Type::nothing"])
    assert type(caught.value) is OpsError
    assert "nothing" in caught.value.message
