"""The Lightsail adapter against botocore's Stubber.

The Stubber validates every request against the real Lightsail API model (operation names,
parameter names and types) and hands back canned responses. What it does not prove: how the real
service behaves over time (how long snapshots take, when NotFound really stops, exact throttling
codes, whether GetInstanceAccessDetails reports host keys for a fresh instance); the canned
responses encode what AWS documents and the field notes (F5) describe.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from botocore.stub import Stubber

from operations.errors import DeadlineExceeded, OpsError, TransientError, UsageError
from operations.lightsail import BotoLightsail, is_throttling
from operations.ports import HostKey, SnapshotInfo
from operations.retry import Backoff
from operations.snapshot_names import (
    post_install_snapshot_name,
    pre_rebuild_snapshot_name,
    validate_snapshot_name,
)
from tests.sim_clock import SimulatedClock

SNAP = "raxx-tickets-pre-rebuild-20260504T120000Z"
T0 = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)


def adapter(client, fake: SimulatedClock, **kwargs) -> BotoLightsail:
    kwargs.setdefault("backoff", Backoff(first=1.0, factor=2.0, maximum=8.0))
    kwargs.setdefault("poll_backoff", Backoff(first=5.0, factor=1.0, maximum=5.0))
    return BotoLightsail(client, fake.clock(), **kwargs)


def snapshot(state: str, progress: str | None = None, name: str = SNAP, created=T0) -> dict:
    raw = {"name": name, "state": state, "createdAt": created, "fromInstanceName": "raxx-tickets"}
    if progress is not None:
        raw["progress"] = progress
    return {"instanceSnapshot": raw}


def throttle(stubber: Stubber, operation: str, code: str = "ThrottlingException") -> None:
    stubber.add_client_error(
        operation,
        service_error_code=code,
        service_message="Rate exceeded",
        http_status_code=400 if code != "TooManyRequestsException" else 429,
    )


# ------------------------------------------------------------------ names


def test_snapshot_names_are_built_in_utc_and_valid():
    local = datetime(2026, 5, 4, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert pre_rebuild_snapshot_name(local) == "raxx-tickets-pre-rebuild-20260504T123005Z"
    assert (
        post_install_snapshot_name(local, "staging") == "staging-modules-installed-20260504T123005Z"
    )


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        pre_rebuild_snapshot_name(datetime(2026, 5, 4, 12, 0, 0))


@pytest.mark.parametrize(
    "bad",
    [
        "x",
        "",
        "raxx-2026-05-04T12:00:00+00:00",
        "has space",
        "snap/1",
        "-leading",
        "trailing.",
        "ünïcode",
        "a" * 256,
    ],
)
def test_invalid_names_are_refused_before_any_call(stubbed, bad):
    client, stubber = stubbed  # no response queued: any API call would fail the test
    with pytest.raises(UsageError):
        BotoLightsail(client, SimulatedClock(start=1000.0).clock()).create_instance_snapshot(
            "raxx-tickets", bad
        )


@pytest.mark.parametrize("good", ["ab", "raxx_tickets.v2-1", SNAP, "a" * 255])
def test_valid_names_pass(good):
    assert validate_snapshot_name(good) == good


# ------------------------------------------------------------------ lookups


def test_get_instance_reads_user_name_from_the_api(stubbed):
    client, stubber = stubbed
    stubber.add_response(
        "get_instance",
        {
            "instance": {
                "name": "raxx-tickets",
                "state": {"code": 16, "name": "running"},
                "publicIpAddress": "203.0.113.10",
                "username": "admin",
                "createdAt": T0,
            }
        },
        {"instanceName": "raxx-tickets"},
    )
    info = adapter(client, SimulatedClock(start=1000.0)).get_instance("raxx-tickets")
    assert info is not None
    assert (info.state, info.public_ip, info.username) == ("running", "203.0.113.10", "admin")
    assert info.created_at == "2026-05-04T12:00:00+00:00"


def test_missing_instance_is_none(stubbed):
    client, stubber = stubbed
    stubber.add_client_error(
        "get_instance",
        "NotFoundException",
        "The Instance does not exist",
        404,
        expected_params={"instanceName": "raxx-tickets"},
    )
    assert adapter(client, SimulatedClock(start=1000.0)).get_instance("raxx-tickets") is None


def test_access_denied_is_an_ops_error_with_a_hint(stubbed):
    client, stubber = stubbed
    stubber.add_client_error("get_instance", "AccessDeniedException", "not authorized", 403)
    with pytest.raises(OpsError) as caught:
        adapter(client, SimulatedClock(start=1000.0)).get_instance("raxx-tickets")
    assert "AccessDeniedException" in (caught.value.cause or "")
    assert caught.value.hint and "AWS_PROFILE" in caught.value.hint


def test_static_ip_attached_and_detached(stubbed):
    client, stubber = stubbed
    stubber.add_response(
        "get_static_ip",
        {
            "staticIp": {
                "name": "raxx-tickets-ip",
                "ipAddress": "203.0.113.10",
                "attachedTo": "raxx-tickets",
                "isAttached": True,
            }
        },
        {"staticIpName": "raxx-tickets-ip"},
    )
    stubber.add_response(
        "get_static_ip",
        {"staticIp": {"name": "raxx-tickets-ip", "ipAddress": "203.0.113.10", "isAttached": False}},
    )
    stubber.add_client_error("get_static_ip", "NotFoundException", "no such static ip", 404)
    ls = adapter(client, SimulatedClock(start=1000.0))
    first = ls.get_static_ip("raxx-tickets-ip")
    assert first is not None and first.attached_to == "raxx-tickets"
    second = ls.get_static_ip("raxx-tickets-ip")
    assert second is not None and second.attached_to is None
    assert ls.get_static_ip("raxx-tickets-ip") is None


def test_host_keys_read_only_the_keys(stubbed):
    client, stubber = stubbed
    stubber.add_response(
        "get_instance_access_details",
        {
            "accessDetails": {
                "privateKey": "-----BEGIN PRIVATE KEY----- not-a-real-key",
                "password": "hunter2-not-real",
                "username": "admin",
                "instanceName": "raxx-tickets",
                "protocol": "ssh",
                "hostKeys": [
                    {
                        "algorithm": "ssh-ed25519",
                        "publicKey": "AAAAC3NzaC1lZDI1NTE5AAAAIE1",
                        "witnessedAt": T0,
                    },
                    {"algorithm": "ssh-rsa", "publicKey": "AAAAB3NzaC1yc2EAAAADAQAB"},
                ],
            }
        },
        {"instanceName": "raxx-tickets", "protocol": "ssh"},
    )
    keys = adapter(client, SimulatedClock(start=1000.0)).host_keys("raxx-tickets")
    assert keys == [
        HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIE1"),
        HostKey("ssh-rsa", "AAAAB3NzaC1yc2EAAAADAQAB"),
    ]
    assert "hunter2" not in repr(keys)


def test_wait_host_keys_polls_until_reported(stubbed):
    client, stubber = stubbed
    stubber.add_response("get_instance_access_details", {"accessDetails": {"hostKeys": []}})
    stubber.add_response(
        "get_instance_access_details",
        {
            "accessDetails": {
                "hostKeys": [
                    {"algorithm": "ssh-ed25519", "publicKey": "AAAAC3NzaC1lZDI1NTE5AAAAIE1"}
                ]
            }
        },
    )
    fake = SimulatedClock(start=1000.0)
    keys = adapter(client, fake).wait_host_keys("raxx-tickets", deadline_seconds=60)
    assert len(keys) == 1 and fake.pauses == [5.0]


# ------------------------------------------------------------------ throttling


def test_throttling_is_retried_with_growing_pauses(stubbed):
    client, stubber = stubbed
    throttle(stubber, "get_instance")
    throttle(stubber, "get_instance", "TooManyRequestsException")
    stubber.add_client_error("get_instance", "ServiceException", "Rate exceeded", 400)
    stubber.add_response(
        "get_instance",
        {"instance": {"name": "raxx-tickets", "state": {"name": "running"}, "username": "admin"}},
    )
    fake = SimulatedClock(start=1000.0)
    messages: list[str] = []
    info = adapter(client, fake, on_retry=messages.append).get_instance("raxx-tickets")
    assert info is not None and info.username == "admin"
    assert fake.pauses == [1.0, 2.0, 4.0]
    assert len(messages) == 3 and "throttled" in messages[0]


def test_endless_throttling_gives_a_transient_error(stubbed):
    client, stubber = stubbed
    for _ in range(3):
        throttle(stubber, "create_instance_snapshot")
    with pytest.raises(TransientError, match="kept throttling create_instance_snapshot"):
        adapter(client, SimulatedClock(start=1000.0), throttle_attempts=3).create_instance_snapshot(
            "raxx-tickets", SNAP
        )


def test_other_errors_are_not_retried(stubbed):
    client, stubber = stubbed
    stubber.add_client_error(
        "create_instance_snapshot",
        "InvalidInputException",
        "The instance is not in a state to snapshot",
        400,
    )
    fake = SimulatedClock(start=1000.0)
    with pytest.raises(OpsError, match=f"creating snapshot {SNAP}"):
        adapter(client, fake).create_instance_snapshot("raxx-tickets", SNAP)
    assert fake.pauses == []


def test_is_throttling_by_message_only():
    from botocore.exceptions import ClientError

    err = ClientError(
        {"Error": {"Code": "ServiceException", "Message": "Rate exceeded"}}, "GetInstance"
    )
    other = ClientError({"Error": {"Code": "ServiceException", "Message": "boom"}}, "GetInstance")
    assert is_throttling(err) and not is_throttling(other)


# ------------------------------------------------------------------ snapshots


def test_create_snapshot_sends_the_validated_name(stubbed):
    client, stubber = stubbed
    stubber.add_response(
        "create_instance_snapshot",
        {"operations": [{"status": "Started"}]},
        {"instanceName": "raxx-tickets", "instanceSnapshotName": SNAP},
    )
    adapter(client, SimulatedClock(start=1000.0)).create_instance_snapshot("raxx-tickets", SNAP)


def test_create_snapshot_failed_operation_is_an_error(stubbed):
    client, stubber = stubbed
    stubber.add_response(
        "create_instance_snapshot", {"operations": [{"status": "Failed", "errorDetails": "quota"}]}
    )
    with pytest.raises(OpsError, match="operation failed"):
        adapter(client, SimulatedClock(start=1000.0)).create_instance_snapshot("raxx-tickets", SNAP)


def test_wait_tolerates_not_found_then_reports_progress_until_available(stubbed):
    client, stubber = stubbed
    params = {"instanceSnapshotName": SNAP}
    stubber.add_client_error(
        "get_instance_snapshot", "NotFoundException", "does not exist", 404, expected_params=params
    )
    throttle(stubber, "get_instance_snapshot")
    stubber.add_response("get_instance_snapshot", snapshot("pending", "40%"), params)
    stubber.add_response("get_instance_snapshot", snapshot("pending", "90%"), params)
    stubber.add_response("get_instance_snapshot", snapshot("available", "100%"), params)
    fake = SimulatedClock(start=1000.0)
    seen: list[tuple[str | None, float]] = []

    def progress(info: SnapshotInfo, elapsed: float) -> None:
        seen.append((info.progress, elapsed))

    info = adapter(client, fake).wait_snapshot_available(
        SNAP, deadline_seconds=600, on_progress=progress
    )
    assert info.state == "available" and info.from_instance == "raxx-tickets"
    assert [p for p, _ in seen] == ["40%", "90%"]
    assert seen[1][1] > seen[0][1]


def test_error_state_fails_naming_the_snapshot(stubbed):
    client, stubber = stubbed
    stubber.add_response("get_instance_snapshot", snapshot("pending", "10%"))
    stubber.add_response("get_instance_snapshot", snapshot("error", "35%"))
    with pytest.raises(OpsError) as caught:
        adapter(client, SimulatedClock(start=1000.0)).wait_snapshot_available(
            SNAP, deadline_seconds=600
        )
    assert not isinstance(caught.value, DeadlineExceeded)
    assert SNAP in caught.value.message and "'error'" in caught.value.message
    assert "delete-instance-snapshot" in (caught.value.hint or "")


def test_unknown_state_never_passes_and_deadline_names_last_state(stubbed):
    client, stubber = stubbed
    for _ in range(3):
        stubber.add_response("get_instance_snapshot", snapshot("copying", "70%"))
    fake = SimulatedClock(start=1000.0)
    with pytest.raises(DeadlineExceeded) as caught:
        adapter(client, fake).wait_snapshot_available(SNAP, deadline_seconds=10)
    assert SNAP in caught.value.message and "copying 70%" in caught.value.message
    assert "--resume" in (caught.value.hint or "")
    assert fake.t - 1000.0 == pytest.approx(10.0)  # waited exactly to the deadline, no further


def test_not_found_for_too_long_is_an_error(stubbed):
    client, stubber = stubbed
    for _ in range(3):
        stubber.add_client_error(
            "get_instance_snapshot", "NotFoundException", "does not exist", 404
        )
    with pytest.raises(OpsError, match="does not exist"):
        adapter(client, SimulatedClock(start=1000.0), not_found_grace=10).wait_snapshot_available(
            SNAP, deadline_seconds=600
        )


def test_get_snapshot_missing_is_none(stubbed):
    client, stubber = stubbed
    stubber.add_client_error("get_instance_snapshot", "NotFoundException", "does not exist", 404)
    assert adapter(client, SimulatedClock(start=1000.0)).get_snapshot(SNAP) is None


def test_list_snapshots_filters_pages_and_sorts_newest_first(stubbed):
    client, stubber = stubbed
    older = "raxx-tickets-modules-installed-20260503T231628Z"
    newer = "raxx-tickets-modules-installed-20260601T080000Z"
    stubber.add_response(
        "get_instance_snapshots",
        {
            "instanceSnapshots": [
                snapshot("available", name=older, created=T0 - timedelta(days=1))[
                    "instanceSnapshot"
                ],
                snapshot("available", name=SNAP, created=T0 + timedelta(days=60))[
                    "instanceSnapshot"
                ],
            ],
            "nextPageToken": "page-2",
        },
        {},
    )
    stubber.add_response(
        "get_instance_snapshots",
        {
            "instanceSnapshots": [
                snapshot("pending", "5%", name=newer, created=T0 + timedelta(days=28))[
                    "instanceSnapshot"
                ],
            ],
        },
        {"pageToken": "page-2"},
    )
    found = adapter(client, SimulatedClock(start=1000.0)).list_snapshots(
        "raxx-tickets-modules-installed-"
    )
    assert [s.name for s in found] == [newer, older]
    assert found[0].state == "pending"


def test_restore_calls(stubbed):
    client, stubber = stubbed
    stubber.add_response(
        "create_instances_from_snapshot",
        {"operations": [{"status": "Started"}]},
        {
            "instanceNames": ["raxx-tickets"],
            "availabilityZone": "us-east-1a",
            "bundleId": "micro_3_0",
            "instanceSnapshotName": SNAP,
        },
    )
    stubber.add_response(
        "attach_static_ip",
        {"operations": [{"status": "Succeeded"}]},
        {"staticIpName": "raxx-tickets-ip", "instanceName": "raxx-tickets"},
    )
    ls = adapter(client, SimulatedClock(start=1000.0))
    ls.create_instance_from_snapshot(
        instance_name="raxx-tickets", snapshot_name=SNAP, zone="us-east-1a", bundle_id="micro_3_0"
    )
    ls.attach_static_ip(static_ip_name="raxx-tickets-ip", instance_name="raxx-tickets")
