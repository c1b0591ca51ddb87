"""The restore through the real BotoLightsail under botocore's Stubber.

The Stubber checks every request against Lightsail's API model (operation and parameter names,
types) and answers with canned responses, in order: so these tests prove the exact calls the
restore makes, their parameters and their order, the retry on throttling, and the listing of both
snapshot kinds. They do not prove how the real service answers over time (how long an instance
stays pending, whether GetInstance is briefly NotFound after the create); the responses encode
what AWS documents. The state step here is MemoryState (the engine side: test_restore_engine.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from operations.errors import StoppedByCheck, TransientError
from operations.lightsail import BotoLightsail
from operations.progress import SilentProgress
from operations.rebuild import Target
from operations.restore import Timing, list_restore_points, restore_from_snapshot
from operations.retry import Backoff
from tests.restore_fakes import MemoryState
from tests.sim_clock import SimulatedClock

SNAP = "raxx-tickets-modules-installed-20260503T231628Z"
PRE = "raxx-tickets-pre-rebuild-20260504T120000Z"
T0 = datetime(2026, 5, 3, 23, 16, 28, tzinfo=UTC)
TARGET = Target(
    stack="prod",
    instance_name="raxx-tickets",
    static_ip_name="raxx-tickets-ip",
    hostname="tickets.raxx.app",
    module_aliases=(),
)


def snapshot_response(name: str, state: str = "available") -> dict:
    return {
        "instanceSnapshot": {
            "name": name,
            "state": state,
            "createdAt": T0,
            "fromInstanceName": "raxx-tickets",
            "progress": "100%",
        }
    }


def instance_response(state: str) -> dict:
    return {
        "instance": {
            "name": "raxx-tickets",
            "state": {"code": 0, "name": state},
            "username": "admin",
            "createdAt": T0,
        }
    }


def static_ip_response(attached: str | None) -> dict:
    raw = {"name": "raxx-tickets-ip", "ipAddress": "203.0.113.10", "isAttached": bool(attached)}
    if attached:
        raw["attachedTo"] = attached
    return {"staticIp": raw}


def operation(status: str = "Started") -> dict:
    return {
        "operations": [
            {"id": "op-1", "status": status, "operationType": "CreateInstancesFromSnapshot"}
        ]
    }


def not_found(stubber: Stubber, operation_name: str, params: dict) -> None:
    stubber.add_client_error(
        operation_name, "NotFoundException", "does not exist", 404, expected_params=params
    )


def test_restore_calls_and_order(stubbed):
    client, stubber = stubbed
    instance = {"instanceName": "raxx-tickets"}
    ip = {"staticIpName": "raxx-tickets-ip"}
    # checks
    stubber.add_response(
        "get_instance_snapshot", snapshot_response(SNAP), {"instanceSnapshotName": SNAP}
    )
    not_found(stubber, "get_instance", instance)
    stubber.add_response("get_static_ip", static_ip_response(None), ip)
    # create: throttled once, then accepted
    create = {
        "instanceNames": ["raxx-tickets"],
        "availabilityZone": "us-east-1a",
        "bundleId": "micro_3_0",
        "instanceSnapshotName": SNAP,
    }
    stubber.add_client_error(
        "create_instances_from_snapshot",
        "ThrottlingException",
        "Rate exceeded",
        400,
        expected_params=create,
    )
    stubber.add_response("create_instances_from_snapshot", operation(), create)
    # wait: briefly invisible, pending, running
    not_found(stubber, "get_instance", instance)
    stubber.add_response("get_instance", instance_response("pending"), instance)
    stubber.add_response("get_instance", instance_response("running"), instance)
    # attach
    stubber.add_response("get_static_ip", static_ip_response(None), ip)
    stubber.add_response(
        "attach_static_ip",
        operation(),
        {"staticIpName": "raxx-tickets-ip", "instanceName": "raxx-tickets"},
    )
    stubber.add_response("get_static_ip", static_ip_response("raxx-tickets"), ip)

    fake = SimulatedClock()
    retries: list[str] = []
    ls = BotoLightsail(client, fake.clock(), backoff=Backoff(1, 2, 8), on_retry=retries.append)
    state = MemoryState()
    result = restore_from_snapshot(
        TARGET,
        SNAP,
        lightsail=ls,
        state=state,
        progress=SilentProgress(),
        clock=fake.clock(),
        timing=Timing(running_deadline=300, poll_backoff=Backoff(5, 1.5, 30)),
    )
    assert result.static_ip_address == "203.0.113.10"
    assert retries and "throttled" in retries[0]
    assert fake.pauses == [1, 5, 7.5]  # one throttle pause, two polls
    assert state.calls[-2:] == ["reconcile", "check"]


def test_failed_operation_in_a_200_answer_stops_the_restore(stubbed):
    client, stubber = stubbed
    stubber.add_response("get_instance_snapshot", snapshot_response(SNAP))
    not_found(stubber, "get_instance", {"instanceName": "raxx-tickets"})
    stubber.add_response("get_static_ip", static_ip_response(None))
    stubber.add_response("create_instances_from_snapshot", operation("Failed"))
    state = MemoryState()
    with pytest.raises(Exception, match="Lightsail reports the operation failed"):
        restore_from_snapshot(
            TARGET,
            SNAP,
            lightsail=BotoLightsail(client, SimulatedClock().clock()),
            state=state,
            progress=SilentProgress(),
            clock=SimulatedClock().clock(),
        )
    assert "reconcile" not in state.calls


def test_throttling_that_never_ends_is_a_transient_error_before_any_change(stubbed):
    client, stubber = stubbed
    for _ in range(3):
        stubber.add_client_error(
            "get_instance_snapshot", "ThrottlingException", "Rate exceeded", 400
        )
    ls = BotoLightsail(
        client, SimulatedClock().clock(), backoff=Backoff(1, 2, 8), throttle_attempts=3
    )
    with pytest.raises(TransientError, match="kept throttling get_instance_snapshot"):
        restore_from_snapshot(
            TARGET,
            SNAP,
            lightsail=ls,
            state=MemoryState(),
            progress=SilentProgress(),
            clock=SimulatedClock().clock(),
        )


def test_snapshot_in_error_is_named(stubbed):
    client, stubber = stubbed
    stubber.add_response("get_instance_snapshot", snapshot_response(SNAP, "error"))
    with pytest.raises(StoppedByCheck, match="state 'error'"):
        restore_from_snapshot(
            TARGET,
            SNAP,
            lightsail=BotoLightsail(client, SimulatedClock().clock()),
            state=MemoryState(),
            progress=SilentProgress(),
            clock=SimulatedClock().clock(),
        )


def test_listing_reads_both_kinds_newest_first(stubbed):
    client, stubber = stubbed
    page = {
        "instanceSnapshots": [
            {"name": SNAP, "state": "available", "createdAt": T0},
            {"name": PRE, "state": "available", "createdAt": datetime(2026, 5, 4, 12, tzinfo=UTC)},
            {"name": "other-instance-modules-installed-1", "state": "available", "createdAt": T0},
        ]
    }
    stubber.add_response("get_instance_snapshots", page, {})
    stubber.add_response("get_instance_snapshots", page, {})
    points = list_restore_points(BotoLightsail(client, SimulatedClock().clock()), "raxx-tickets")
    assert [(p.snapshot.name, p.kind) for p in points] == [
        (PRE, "pre-rebuild"),
        (SNAP, "post-install"),
    ]
