"""The restore's state step on the real engine (Pulumi CLI v3.274, file backend).

The stack is the restorable stand-in (tests/restore_fakes.py): dynamic providers whose instance
has Lightsail's id-is-its-name, a refresh that cannot see user_data, and provisioning triggers
that carry the instance's ARN and creation time. Lightsail itself is CloudLightsail over the same
JSON cloud. Proven here, for each way the state can stand after the instance was lost:
- the state still holds the instance (deleted in Lightsail by hand);
- the state lost it (a full `pulumi refresh` after the deletion): put back from the saved copy;
- a rebuild failed after delete-before-replace (the entry is flagged pendingReplacement);
after the restore, a preview shows no replacement of the instance, the protect bit is on in the
state, user_data is unchanged and no provisioning step would re-run; a locked stack stops the
restore before anything changes. Not proven: the real pulumi-aws Read (see restore_fakes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi import automation as auto

from operations.engine import AutomationEngine
from operations.errors import OpsError, StackLocked, UsageError
from operations.progress import SilentProgress
from operations.rebuild import Target
from operations.restore import (
    PulumiStateStep,
    Situation,
    load_saved_entry,
    restore_from_snapshot,
    save_instance_state,
)
from operations.retry import Clock
from tests.conftest import find_tool, need
from tests.engine_project.roles import STANDIN_ROLES as ROLES
from tests.engine_project.stack import StandinPaths
from tests.restore_fakes import (
    FAIL_CREATE_FILE,
    INSTANCE_NAME,
    PROJECT,
    STATIC_IP_NAME,
    CloudLightsail,
    delete_instance_in_cloud,
    instance_record,
    restorable_stack,
    snapshot,
)

pytestmark = pytest.mark.engine

STACK = "restore"
SNAP = "raxx-tickets-modules-installed-20260503T231628Z"
TARGET = Target(
    stack=STACK,
    instance_name=INSTANCE_NAME,
    static_ip_name=STATIC_IP_NAME,
    hostname="tickets.raxx.app",
    module_aliases=(),
)
INSTANCE_URN = (
    f"urn:pulumi:{STACK}::{PROJECT}::pulumi-python:dynamic/standin:Instance::{INSTANCE_NAME}"
)


class World:
    def __init__(self, root: Path, cli: str) -> None:
        self.paths = StandinPaths(root)
        self.stack = restorable_stack(root, cli, stack_name=STACK)
        self.lines: list[str] = []
        self.engine = AutomationEngine(
            self.stack, instance=INSTANCE_NAME, on_progress=self.lines.append
        )
        self.lightsail = CloudLightsail(
            state_dir=str(self.paths.cloud), snapshots={SNAP: snapshot(SNAP)}
        )
        self.progress = SilentProgress()

    def entry(self, urn: str = INSTANCE_URN) -> dict | None:
        resources = (self.stack.export_stack().deployment or {}).get("resources") or []
        return next((r for r in resources if r["urn"] == urn), None)

    def commands(self) -> list[dict]:
        resources = (self.stack.export_stack().deployment or {}).get("resources") or []
        return [r for r in resources if r["type"].endswith(":Command")]

    def restore(self, saved: dict | None = None):
        state = PulumiStateStep(
            self.engine, saved=saved, roles=ROLES, on_progress=self.lines.append
        )
        return restore_from_snapshot(
            TARGET,
            SNAP,
            lightsail=self.lightsail,
            state=state,
            progress=self.progress,
            clock=Clock(now=lambda: 0.0, sleep=lambda _s: None),
        )

    def assert_in_line(self, old_arn: str) -> None:
        """The claims of the restore, checked independently of its own report."""
        preview = self.engine.preview()
        assert preview.error is None, preview.error
        ops = {s.urn: s.op for s in preview.steps}
        assert ops[INSTANCE_URN] == "same", preview.steps
        entry = self.entry()
        assert entry is not None and entry["id"] == INSTANCE_NAME
        assert entry["protect"] is True
        live = instance_record(self.paths.cloud)
        assert live is not None
        assert entry["outputs"]["arn"] == live["outputs"]["arn"] != old_arn
        assert entry["inputs"]["user_data"].startswith("#!/bin/sh"), "user_data kept"
        for command in self.commands():
            assert command["inputs"]["triggers"][0] == live["outputs"]["arn"], command["urn"]
            assert ops.get(command["urn"], "same") == "same", "provisioning would re-run"


@pytest.fixture
def world(tmp_path: Path) -> World:
    cli = find_tool("pulumi")
    need(cli is not None, "the Pulumi CLI", "run 'sh tools/setup.sh' (it builds it with Go)")
    assert cli is not None
    w = World(tmp_path, cli)
    w.engine.up()
    return w


def test_instance_still_in_state_is_refreshed_and_adopted(world):
    old = world.entry()
    assert old is not None
    delete_instance_in_cloud(world.paths.cloud, INSTANCE_NAME)  # gone in Lightsail, not in state

    result = world.restore()

    assert result.state is not None and result.state.situation is Situation.IN_STATE
    assert result.state.instance_op == "same" and result.state.protected
    assert len(result.state.adopted_triggers) == 3
    assert world.lightsail.changes == [
        f"create_instance_from_snapshot {INSTANCE_NAME} {SNAP} us-east-1a micro_3_0",
        f"attach_static_ip {STATIC_IP_NAME} {INSTANCE_NAME}",
    ]
    world.assert_in_line(old["outputs"]["arn"])
    assert world.engine.preview_expect_no_changes() is True
    assert old["inputs"]["user_data"] == world.entry()["inputs"]["user_data"]


def test_instance_missing_from_state_comes_back_from_the_saved_copy(world, tmp_path):
    saved_path = save_instance_state(world.engine, tmp_path / "run" / "instance-state.json")
    assert oct(saved_path.stat().st_mode & 0o777) == "0o600"
    old = world.entry()
    assert old is not None
    delete_instance_in_cloud(world.paths.cloud, INSTANCE_NAME)
    world.stack.refresh()  # the engine drops the deleted instance from the state
    assert world.entry() is None

    # Without the copy the restore refuses before changing anything.
    with pytest.raises(UsageError) as refused:
        world.restore()
    assert "--state-from" in (refused.value.hint or "")
    assert world.lightsail.changes == []

    result = world.restore(saved=load_saved_entry(saved_path, STACK))

    assert result.state is not None and result.state.situation is Situation.MISSING
    assert result.state.instance_op == "same", result.render()
    world.assert_in_line(old["outputs"]["arn"])


def test_failed_rebuild_pending_replacement_then_program_reverted(world):
    old = world.entry()
    assert old is not None
    # A rebuild: protect off, new user_data, and the replacement's create fails after the delete.
    world.engine.set_protect(False)
    world.stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
    (world.paths.cloud / FAIL_CREATE_FILE).write_text("fail")
    with pytest.raises(OpsError, match="could not create the instance"):
        world.engine.up()
    (world.paths.cloud / FAIL_CREATE_FILE).unlink()
    assert instance_record(world.paths.cloud) is None
    assert world.entry()["pendingReplacement"] is True

    result = world.restore()

    report = result.state
    assert report is not None and report.situation is Situation.PENDING_REPLACEMENT
    assert INSTANCE_URN in report.cleared_pending
    # The program still declares the rebuild's user_data: the preview says so, protected.
    assert report.instance_op == "replace" and "user_data" in report.instance_keys
    assert report.protected and world.engine.instance_protected() is True
    assert "revert the change" in result.render()
    # The operator reverts the program's change: nothing left to replace, nothing re-runs.
    world.stack.remove_config("freescout:user_data_version")
    world.assert_in_line(old["outputs"]["arn"])


def test_locked_stack_stops_before_any_change(world):
    delete_instance_in_cloud(world.paths.cloud, INSTANCE_NAME)
    locks = world.paths.backend / ".pulumi" / "locks" / "organization" / PROJECT / STACK
    locks.mkdir(parents=True, exist_ok=True)
    lock = locks / "c0ffee-other-update.json"
    lock.write_text(
        json.dumps(
            {
                "pid": 4242,
                "username": "ops",
                "hostname": "laptop",
                "timestamp": "2026-05-04T00:00:00Z",
            }
        )
    )
    try:
        with pytest.raises(StackLocked) as caught:
            world.restore()
    finally:
        lock.unlink()
    assert "pulumi cancel" in (caught.value.hint or "")
    assert world.lightsail.changes == []
    assert instance_record(world.paths.cloud) is None


def test_saved_copy_is_checked(world, tmp_path):
    path = save_instance_state(world.stack, tmp_path / "copy.json", instance=INSTANCE_NAME)
    document = json.loads(path.read_text())
    assert document["resource"]["urn"] == INSTANCE_URN
    assert document["provider"]["type"].startswith("pulumi:providers:")
    with pytest.raises(UsageError, match="saved from stack"):
        load_saved_entry(path, "prod")
