"""Stand-ins for the restore tests: an in-memory Lightsail, and a "restorable" stand-in stack.

1. `MemoryLightsail` implements ports.Lightsail in memory (snapshots, instances, static IPs) and
   records every call, so the restore's checks and order can be asserted. It does NOT prove that
   Lightsail accepts these calls (tests/test_restore_lightsail.py runs the real BotoLightsail under
   botocore's Stubber), nor how long Lightsail takes, nor that a restored instance boots.

2. `restorable_program` is the stand-in stack of tests/engine_project with the two facts the state
   step depends on made faithful: the instance's id is its name (as Lightsail's is), the instance
   has a `read` (refresh) that reports the live ARN and creation time but keeps `user_data` from the
   prior state (Lightsail's API never returns user_data), and the provisioning steps carry the
   instance's ARN and creation time in their triggers, as freescout/provisioning.py does.
   `CloudLightsail` is ports.Lightsail over the same JSON cloud, so a restore creates the instance
   the engine then reads. What this does NOT prove: what the real pulumi-aws provider returns
   from Read (that it carries user_data forward from the prior state, because Lightsail's API
   does not report it, is an assumption stated in operations/restore.py, not tested here), and
   anything about real networking.

3. `MemoryState` is the restore's state step in memory: order and error paths only, nothing about
   the engine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dyn
from pulumi import automation as auto

from operations.errors import OpsError, TransientError
from operations.ports import InstanceInfo, SnapshotInfo, StaticIpInfo
from operations.restore import Situation, StateCheck, StateReport
from tests.engine_project import cloud
from tests.engine_project.providers import (
    PLUMBING,
    Command,
    DnsRecord,
    InstancePublicPorts,
    StaticIp,
    StaticIpAttachment,
)
from tests.engine_project.stack import standin_stack

PROJECT = "standin"
INSTANCE_NAME = "raxx-tickets"
STATIC_IP_NAME = "raxx-tickets-ip"
FAIL_CREATE_FILE = "fail-instance-create"


# ---------------------------------------------------------------- in-memory Lightsail


@dataclass
class MemoryLightsail:
    """ports.Lightsail in memory. `pending_polls` is how many looks a new instance stays pending;
    `throttle` raises the adapter's exhausted-throttling error from the named call."""

    snapshots: dict[str, SnapshotInfo] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)  # name -> state
    static_ips: dict[str, str | None] = field(default_factory=dict)  # name -> attached to
    pending_polls: int = 2
    boot_state: str = "running"
    throttle: str | None = None
    calls: list[str] = field(default_factory=list)
    _looks: dict[str, int] = field(default_factory=dict)

    def _called(self, what: str) -> None:
        self.calls.append(what)
        if self.throttle and what.startswith(self.throttle):
            raise TransientError(
                f"Lightsail kept throttling {self.throttle} after 6 tries",
                hint="wait a minute, then rerun the same command",
            )

    def get_instance(self, name: str) -> InstanceInfo | None:
        self._called(f"get_instance {name}")
        if name not in self.instances:
            return None
        looks = self._looks.get(name, 0)
        self._looks[name] = looks + 1
        state = self.instances[name]
        if state == "pending" and looks >= self.pending_polls:
            state = self.instances[name] = self.boot_state
        return InstanceInfo(name=name, state=state, public_ip="198.51.100.9", username="admin")

    def get_static_ip(self, name: str) -> StaticIpInfo | None:
        self._called(f"get_static_ip {name}")
        if name not in self.static_ips:
            return None
        return StaticIpInfo(name=name, ip_address="203.0.113.10", attached_to=self.static_ips[name])

    def get_snapshot(self, snapshot_name: str) -> SnapshotInfo | None:
        self._called(f"get_snapshot {snapshot_name}")
        return self.snapshots.get(snapshot_name)

    def list_snapshots(self, prefix: str) -> list[SnapshotInfo]:
        self._called(f"list_snapshots {prefix}")
        found = [s for n, s in self.snapshots.items() if n.startswith(prefix)]
        return sorted(found, key=lambda s: s.created_at or "", reverse=True)

    def create_instance_from_snapshot(
        self, *, instance_name: str, snapshot_name: str, zone: str, bundle_id: str
    ) -> None:
        self._called(
            f"create_instance_from_snapshot {instance_name} {snapshot_name} {zone} {bundle_id}"
        )
        self.instances[instance_name] = "pending"

    def attach_static_ip(self, *, static_ip_name: str, instance_name: str) -> None:
        self._called(f"attach_static_ip {static_ip_name} {instance_name}")
        self.static_ips[static_ip_name] = instance_name

    def create_instance_snapshot(self, instance_name: str, snapshot_name: str) -> None:
        raise AssertionError("a restore never takes a snapshot")

    def wait_snapshot_available(self, snapshot_name, *, deadline_seconds, on_progress=None):
        raise AssertionError("a restore never waits for a snapshot")

    def host_keys(self, instance_name: str):
        raise AssertionError("a restore does not read host keys")

    @property
    def changes(self) -> list[str]:
        return [c for c in self.calls if c.startswith(("create_", "attach_"))]


def snapshot(
    name: str,
    state: str = "available",
    created: str = "2026-05-03T23:16:28+00:00",
    from_instance: str = INSTANCE_NAME,
) -> SnapshotInfo:
    return SnapshotInfo(
        name=name,
        state=state,
        progress="100%" if state == "available" else "40%",
        created_at=created,
        from_instance=from_instance,
    )


# ---------------------------------------------------------------- the restorable stand-in stack


class NamedInstanceProvider(dyn.ResourceProvider):
    """The instance as Lightsail keeps it: id = name, a fresh ARN and creation time per instance,
    and a refresh that cannot see user_data (kept from the prior state)."""

    REPLACE_KEYS = ("instance_name", "user_data", "blueprint_id", "bundle_id", "availability_zone")
    OUTPUT_KEYS = ("arn", "created_at", "public_ip")

    def _inputs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in props.items()
            if not k.startswith("__") and k not in self.OUTPUT_KEYS and v is not None
        }

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        keys = (set(self._inputs(olds)) | set(self._inputs(news))) - PLUMBING
        changed = sorted(k for k in keys if olds.get(k) != news.get(k))
        return dyn.DiffResult(
            changes=bool(changed),
            replaces=[k for k in changed if k in self.REPLACE_KEYS],
            delete_before_replace=True,
        )

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        inputs = self._inputs(props)
        state_dir = inputs["state_dir"]
        if (Path(state_dir) / FAIL_CREATE_FILE).exists():
            raise Exception("InternalFailure: Lightsail could not create the instance")  # noqa: TRY002
        name = inputs["instance_name"]
        with cloud.transaction(state_dir) as data:
            if name in data["resources"]:
                raise Exception(f"InvalidInputException: Some names are already in use: {name}")  # noqa: TRY002
            live = new_instance_record(data, name, inputs)
            data["log"].append(["create", "Instance", name])
        return dyn.CreateResult(id_=name, outs={**inputs, **live["outputs"]})

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        data = cloud.read(props["state_dir"])
        live = data["resources"].get(id_)
        if live is None or live["kind"] != "Instance":
            return dyn.ReadResult(id_="", outs={})  # gone: the engine drops it from the state
        outs = {k: v for k, v in props.items() if not k.startswith("__")}
        # The API reports the live identity; user_data is not in its answer, so it stays as it was.
        outs.update(live["outputs"])
        return dyn.ReadResult(id_=id_, outs=outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(outs=dict(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with cloud.transaction(props["state_dir"]) as data:
            data["resources"].pop(_id, None)
            data["log"].append(["delete", "Instance", _id])


def new_instance_record(data: dict[str, Any], name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Add an instance named `name` to the cloud (inside a transaction) and return its record."""
    number = data["next_id"]
    data["next_id"] = number + 1
    record = {
        "kind": "Instance",
        "inputs": {k: v for k, v in inputs.items() if k != "user_data"},
        "outputs": {
            "arn": f"arn:aws:lightsail:us-east-1:000000000000:Instance/{uuid.uuid4()}",
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "public_ip": f"198.51.100.{number % 250 + 1}",
        },
    }
    data["resources"][name] = record
    return record


class NamedInstance(dyn.Resource, module="standin", name="Instance"):
    arn: pulumi.Output[str]
    created_at: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    PROVIDER = NamedInstanceProvider()

    def __init__(self, name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        props = {**args, **{k: None for k in NamedInstanceProvider.OUTPUT_KEYS}}
        super().__init__(self.PROVIDER, name, props, opts)


def restorable_program() -> None:
    """The stand-in stack with a Lightsail-like instance (an inline program)."""
    settings = pulumi.Config("freescout")
    state_dir = pulumi.Config("standin").require("state_dir")
    protect = settings.get_bool("protect")
    protect = True if protect is None else protect
    version = settings.get("user_data_version") or "1"

    instance = NamedInstance(
        INSTANCE_NAME,
        {
            "state_dir": state_dir,
            "instance_name": INSTANCE_NAME,
            "blueprint_id": "lamp_ls_1_0",
            "bundle_id": "micro_3_0",
            "availability_zone": "us-east-1a",
            "user_data": f"#!/bin/sh\nset -eu\necho bootstrap v{version}\n",
        },
        pulumi.ResourceOptions(protect=protect, delete_before_replace=True),
    )
    InstancePublicPorts(
        f"{INSTANCE_NAME}-ports",
        {"state_dir": state_dir, "instance_name": INSTANCE_NAME, "ports": [22, 80, 443]},
        pulumi.ResourceOptions(depends_on=[instance], delete_before_replace=True),
    )
    static_ip = StaticIp(
        STATIC_IP_NAME,
        {"state_dir": state_dir, "name": STATIC_IP_NAME},
        pulumi.ResourceOptions(protect=True),
    )
    attachment = StaticIpAttachment(
        f"{INSTANCE_NAME}-ip-attachment",
        {"state_dir": state_dir, "static_ip_name": STATIC_IP_NAME, "instance_name": instance.id},
        pulumi.ResourceOptions(depends_on=[instance, static_ip], delete_before_replace=True),
    )
    DnsRecord(
        "tickets-dns",
        {
            "state_dir": state_dir,
            "zone_id": "zone-raxx-app",
            "name": "tickets.raxx.app",
            "type": "A",
            "content": static_ip.ip_address,
        },
        pulumi.ResourceOptions(protect=True),
    )
    previous: pulumi.Resource = attachment
    for step in ("wait-cloud-init", "configure", "modules"):
        previous = Command(
            f"{INSTANCE_NAME}-{step}",
            {
                "state_dir": state_dir,
                "connection_host": static_ip.ip_address,
                "create": f"sh /opt/raxx/{step}.sh",
                # As freescout/provisioning.py: the instance's identity, so a new one re-runs all.
                "triggers": [instance.arn, instance.created_at],
            },
            pulumi.ResourceOptions(depends_on=[previous]),
        )
    pulumi.export("instance_arn", instance.arn)


def restorable_stack(root: Path, pulumi_cli: str, stack_name: str = "restore") -> auto.Stack:
    """The restorable stand-in stack under `root`: local file backend, passphrase secrets."""
    return standin_stack(root, pulumi_cli, stack_name, program=restorable_program)


@dataclass
class CloudLightsail(MemoryLightsail):
    """MemoryLightsail whose instances live in the stand-in's JSON cloud (what the engine reads).

    Snapshots stay in memory; a restored instance gets a fresh ARN and creation time, as a real
    one does. Static IP attachment is recorded in the cloud under `static_ip_attached`."""

    state_dir: str = ""
    on_create: Callable[[], None] | None = None

    def get_instance(self, name: str) -> InstanceInfo | None:
        self._called(f"get_instance {name}")
        live = cloud.read(self.state_dir)["resources"].get(name)
        if live is None or live["kind"] != "Instance":
            return None
        return InstanceInfo(
            name=name, state="running", public_ip=live["outputs"]["public_ip"], username="admin"
        )

    def get_static_ip(self, name: str) -> StaticIpInfo | None:
        self._called(f"get_static_ip {name}")
        data = cloud.read(self.state_dir)
        ip = next(
            (
                r
                for r in data["resources"].values()
                if r["kind"] == "StaticIp" and r["inputs"].get("name") == name
            ),
            None,
        )
        if ip is None:
            return None
        return StaticIpInfo(
            name=name,
            ip_address=ip["outputs"]["ip_address"],
            attached_to=data.get("static_ip_attached", {}).get(name),
        )

    def create_instance_from_snapshot(
        self, *, instance_name: str, snapshot_name: str, zone: str, bundle_id: str
    ) -> None:
        self._called(
            f"create_instance_from_snapshot {instance_name} {snapshot_name} {zone} {bundle_id}"
        )
        with cloud.transaction(self.state_dir) as data:
            if instance_name in data["resources"]:
                raise AssertionError(f"{instance_name} exists: the restore's check failed")
            new_instance_record(
                data,
                instance_name,
                {
                    "state_dir": self.state_dir,
                    "instance_name": instance_name,
                    "blueprint_id": "lamp_ls_1_0",
                    "bundle_id": bundle_id,
                    "availability_zone": zone,
                },
            )
            data["log"].append(["restore", "Instance", instance_name, snapshot_name])

    def attach_static_ip(self, *, static_ip_name: str, instance_name: str) -> None:
        self._called(f"attach_static_ip {static_ip_name} {instance_name}")
        with cloud.transaction(self.state_dir) as data:
            data.setdefault("static_ip_attached", {})[static_ip_name] = instance_name


def delete_instance_in_cloud(state_dir: str | os.PathLike[str], name: str) -> None:
    """What `aws lightsail delete-instance` does: the instance goes, its static IP detaches."""
    with cloud.transaction(str(state_dir)) as data:
        data["resources"].pop(name, None)
        for ip, attached in list(data.get("static_ip_attached", {}).items()):
            if attached == name:
                data["static_ip_attached"][ip] = None
        data["log"].append(["delete", "Instance", name])


def instance_record(state_dir: str | os.PathLike[str], name: str = INSTANCE_NAME) -> dict | None:
    return cloud.read(state_dir)["resources"].get(name)


# ---------------------------------------------------------------- in-memory state step


@dataclass
class MemoryState:
    """operations.restore.StateStep in memory: records calls, can refuse, be locked or fail.

    It does NOT prove anything about the engine (tests/test_restore_engine.py does that); it lets
    the restore's order and error paths be tested without one."""

    situation: Situation = Situation.IN_STATE
    check_error: OpsError | None = None
    lock_error: OpsError | None = None
    reconcile_error: OpsError | None = None
    instance_op: str = "same"
    calls: list[str] = field(default_factory=list)

    def check(self) -> StateCheck:
        self.calls.append("check")
        if self.check_error:
            raise self.check_error
        return StateCheck(
            self.situation,
            "urn:pulumi:prod::freescout::x$aws:lightsail/instance:Instance::freescout-instance",
        )

    def probe_lock(self) -> None:
        self.calls.append("probe_lock")
        if self.lock_error:
            raise self.lock_error

    def reconcile(self) -> StateReport:
        self.calls.append("reconcile")
        if self.reconcile_error:
            raise self.reconcile_error
        urn = self.check().instance_urn
        return StateReport(
            situation=self.situation,
            instance_urn=urn,
            refreshed=(urn,),
            instance_op=self.instance_op,
        )
