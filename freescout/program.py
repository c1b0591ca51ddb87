"""The whole stack: settings in, components declared, outputs exported.

`main()` is what `__main__.py` runs under the engine. `define()` is the same program for a
given settings object and private key, so the offline plan and the tests evaluate exactly it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pulumi

from freescout import userdata
from freescout.dns import Dns
from freescout.host import Host
from freescout.passwords import Secrets
from freescout.provisioning import Provisioning
from freescout.settings import NS, Settings, from_pulumi_config, set_command
from operations.errors import UsageError

NAME = "freescout"


def define(settings: Settings, private_key: pulumi.Input[str]) -> dict[str, pulumi.Output]:
    """Declare every resource of the stack and export its outputs; returns the exports."""
    host = Host(NAME, settings, userdata.render(settings.hostname, ref=settings.freescout_ref))
    secrets = Secrets(NAME, settings)
    dns = Dns(NAME, settings, host.static_ip.ip_address)
    provisioning = Provisioning(NAME, settings, host, secrets, private_key, after=[dns.record])
    exports: dict[str, pulumi.Output] = {
        "instance_name": host.instance.name,
        "instance_arn": host.instance.arn,
        "static_ip": host.static_ip.ip_address,
        "static_ip_name": host.static_ip.name,
        "hostname": pulumi.Output.from_input(settings.hostname),
        "ssh_user": pulumi.Output.from_input(settings.ssh_user),
        "modules": pulumi.Output.from_input([m.alias for m in settings.modules]),
        "ssm_parameters": pulumi.Output.all(*[p.name for p in secrets.parameters.values()]),
        "post_install_snapshot": provisioning.post_install_snapshot.stdout,
    }
    for key, value in exports.items():
        pulumi.export(key, value)
    return exports


def read_private_key(path: str) -> pulumi.Output[str]:
    """The SSH private key at `path` (with ~ expanded), as a secret.

    Missing file: a preview (a pull-request check has no key) goes on with a stand-in and a
    warning; an update stops with the command that fixes the path.
    """
    full = Path(os.path.expanduser(path))
    if full.is_file():
        return pulumi.Output.secret(full.read_text())
    if pulumi.runtime.is_dry_run():
        pulumi.log.warn(f"SSH private key {full} not found: the preview uses a stand-in; "
                        "`pulumi up` will stop until the key is there")
        return pulumi.Output.secret("[no private key on this machine]")
    raise UsageError(
        f"the SSH private key {full} (freescout:ssh_private_key_path) does not exist",
        hint=set_command(f"{NS}:ssh_private_key_path", "<path of the instance's key>"),
    )


def main() -> None:
    """The program as the engine runs it: read and validate config once, then declare."""
    settings = from_pulumi_config()
    define(settings, read_private_key(settings.ssh_private_key_path))
