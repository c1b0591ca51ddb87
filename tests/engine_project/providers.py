"""Python dynamic providers standing in for Lightsail, Cloudflare and pulumi-command.

Type tokens are `pulumi-python:dynamic/standin:<Kind>`; the plan guard's tests rely on them.
Each provider keeps its objects in the JSON "cloud" of `tests.engine_project.cloud` and tells the
engine which input changes force a replacement, as the real providers do. What this does not
prove: anything about the real AWS, Cloudflare or SSH behaviour beyond the replace/update shape.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.dynamic as dyn

from tests.engine_project import cloud

# Inputs every stand-in carries that are plumbing, not cloud properties: never a diff.
PLUMBING = frozenset({"state_dir", "fail_ssh_times"})

# The error text OpenSSH-based provisioning prints while sshd restarts during cloud-init.
SSH_RESET = (
    "ssh: handshake failed: read tcp 10.0.0.5:53122->198.51.100.7:22: "
    "read: connection reset by peer"
)


class StandinProvider(dyn.ResourceProvider):
    """CRUD against the JSON cloud for one kind of stand-in resource."""

    def __init__(
        self,
        kind: str,
        *,
        replace_keys: tuple[str, ...],
        output_keys: tuple[str, ...] = (),
        unique_key: str | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.replace_keys = replace_keys
        self.output_keys = output_keys
        self.unique_key = unique_key

    def _inputs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in props.items()
            if not k.startswith("__") and k not in self.output_keys and v is not None
        }

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        keys = (set(self._inputs(olds)) | set(self._inputs(news))) - PLUMBING
        changed = sorted(k for k in keys if olds.get(k) != news.get(k))
        replaces = [k for k in changed if k in self.replace_keys]
        return dyn.DiffResult(changes=bool(changed), replaces=replaces)

    def _outputs(self, number: int, inputs: dict[str, Any]) -> dict[str, Any]:
        outs = dict(inputs)
        if self.kind == "Instance":
            outs["public_ip"] = f"198.51.100.{number % 250 + 1}"
        elif self.kind == "StaticIp":
            outs["ip_address"] = f"203.0.113.{number % 250 + 1}"
        elif self.kind == "Command":
            outs["stdout"] = "ok"
        return outs

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        inputs = self._inputs(props)
        state_dir = inputs["state_dir"]
        failures = int(inputs.get("fail_ssh_times") or 0)
        if self.kind == "Command" and failures and cloud.take_ssh_failure(state_dir, failures):
            raise Exception(SSH_RESET)  # noqa: TRY002 - the provider's error text is the point
        with cloud.transaction(state_dir) as data:
            if self.unique_key is not None:
                for res in data["resources"].values():
                    same = res["inputs"].get(self.unique_key) == inputs.get(self.unique_key)
                    if res["kind"] == self.kind and same:
                        # Lightsail refuses a second instance of the same name: this is why the
                        # instance must be deleted before its replacement is created.
                        raise Exception(  # noqa: TRY002
                            f"InvalidInputException: Some names are already in use: "
                            f"{inputs.get(self.unique_key)}"
                        )
            number = data["next_id"]
            data["next_id"] = number + 1
            new_id = f"{self.kind.lower()}-{number}"
            outs = self._outputs(number, inputs)
            data["resources"][new_id] = {"kind": self.kind, "inputs": inputs, "outputs": outs}
            data["log"].append(["create", self.kind, new_id])
        return dyn.CreateResult(id_=new_id, outs=outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        inputs = self._inputs(news)
        with cloud.transaction(inputs["state_dir"]) as data:
            res = data["resources"][_id]
            number = int(_id.rsplit("-", 1)[1])
            res["inputs"] = inputs
            res["outputs"] = self._outputs(number, inputs)
            data["log"].append(["update", self.kind, _id])
        return dyn.UpdateResult(outs=res["outputs"])

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with cloud.transaction(props["state_dir"]) as data:
            data["resources"].pop(_id, None)
            data["log"].append(["delete", self.kind, _id])


def _props(args: dict[str, Any], outputs: tuple[str, ...]) -> dict[str, Any]:
    # Output-only properties are declared as None so the resource exposes them as attributes.
    return {**args, **{key: None for key in outputs}}


class Instance(dyn.Resource, module="standin", name="Instance"):
    """The Lightsail instance: a new user_data version forces a replacement; the name is unique."""

    public_ip: pulumi.Output[str]
    OUTPUTS = ("public_ip",)
    PROVIDER = StandinProvider(
        "Instance",
        replace_keys=("instance_name", "user_data_version", "blueprint_id", "bundle_id"),
        output_keys=OUTPUTS,
        unique_key="instance_name",
    )

    def __init__(self, name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.PROVIDER, name, _props(args, self.OUTPUTS), opts)


class InstancePublicPorts(dyn.Resource, module="standin", name="InstancePublicPorts"):
    """The instance's open ports: replaced with the instance."""

    PROVIDER = StandinProvider("InstancePublicPorts", replace_keys=("instance_name", "instance_id"))

    def __init__(self, name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.PROVIDER, name, dict(args), opts)


class StaticIp(dyn.Resource, module="standin", name="StaticIp"):
    """The static IP: a new name means a new address."""

    ip_address: pulumi.Output[str]
    OUTPUTS = ("ip_address",)
    PROVIDER = StandinProvider(
        "StaticIp", replace_keys=("name",), output_keys=OUTPUTS, unique_key="name"
    )

    def __init__(self, name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.PROVIDER, name, _props(args, self.OUTPUTS), opts)


class StaticIpAttachment(dyn.Resource, module="standin", name="StaticIpAttachment"):
    """Binds the static IP to one instance: re-created for a new instance."""

    PROVIDER = StandinProvider(
        "StaticIpAttachment", replace_keys=("static_ip_name", "instance_name", "instance_id")
    )

    def __init__(self, name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.PROVIDER, name, dict(args), opts)


class DnsRecord(dyn.Resource, module="standin", name="DnsRecord"):
    """The A record: a new address is an in-place update, a new name a replacement."""

    PROVIDER = StandinProvider("DnsRecord", replace_keys=("zone_id", "name", "type"))

    def __init__(self, name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.PROVIDER, name, dict(args), opts)


class Command(dyn.Resource, module="standin", name="Command"):
    """A provisioning step over SSH: new triggers (a new instance id) re-run it."""

    stdout: pulumi.Output[str]
    OUTPUTS = ("stdout",)
    PROVIDER = StandinProvider(
        "Command", replace_keys=("triggers", "create", "connection_host"), output_keys=OUTPUTS
    )

    def __init__(self, name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.PROVIDER, name, _props(args, self.OUTPUTS), opts)
