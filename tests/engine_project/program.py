"""The stand-in stack: the real stack's protection shape on dynamic providers.

Config (namespace `freescout`, like the real stack): `protect` (default true) protects the
instance; `user_data_version` forces the instance's replacement when it changes.
Config (namespace `standin`, test switches): `state_dir` (required: the folder of the JSON cloud),
`replace_static_ip` (true renames the static IP, which forces its replacement),
`fail_ssh_times` (the provisioning step `configure` fails that many times with an SSH reset),
`drop_ports` (true removes the public ports from the program: a plain delete),
`db_password` (secret: passed to `configure`, used to prove secrets stay masked).
"""

from __future__ import annotations

import pulumi

from tests.engine_project.providers import (
    Command,
    DnsRecord,
    Instance,
    InstancePublicPorts,
    StaticIp,
    StaticIpAttachment,
)

PROJECT = "standin"
INSTANCE_NAME = "raxx-tickets"
INSTANCE_RESOURCE = "raxx-tickets"  # the Pulumi resource name of the instance


def program() -> None:
    """Declare the stand-in resources (an inline program for the Automation API)."""
    settings = pulumi.Config("freescout")
    switches = pulumi.Config("standin")
    state_dir = switches.require("state_dir")
    protect = settings.get_bool("protect")
    protect = True if protect is None else protect
    user_data_version = settings.get("user_data_version") or "1"
    replace_static_ip = switches.get_bool("replace_static_ip") or False
    fail_ssh_times = switches.get_int("fail_ssh_times") or 0
    drop_ports = switches.get_bool("drop_ports") or False
    db_password = switches.get_secret("db_password") or pulumi.Output.secret("unset")

    instance = Instance(
        INSTANCE_RESOURCE,
        {
            "state_dir": state_dir,
            "instance_name": INSTANCE_NAME,
            "blueprint_id": "lamp_ls_1_0",
            "bundle_id": "micro_3_0",
            "availability_zone": "us-east-1a",
            "user_data_version": user_data_version,
        },
        pulumi.ResourceOptions(protect=protect, delete_before_replace=True),
    )
    if not drop_ports:
        InstancePublicPorts(
            f"{INSTANCE_NAME}-ports",
            {
                "state_dir": state_dir,
                "instance_name": INSTANCE_NAME,
                "instance_id": instance.id,
                "ports": [22, 80, 443],
            },
            pulumi.ResourceOptions(depends_on=[instance], delete_before_replace=True),
        )
    static_ip = StaticIp(
        f"{INSTANCE_NAME}-ip",
        {
            "state_dir": state_dir,
            "name": f"{INSTANCE_NAME}-ip-2" if replace_static_ip else f"{INSTANCE_NAME}-ip",
        },
        pulumi.ResourceOptions(protect=True),
    )
    attachment = StaticIpAttachment(
        f"{INSTANCE_NAME}-ip-attachment",
        {
            "state_dir": state_dir,
            "static_ip_name": f"{INSTANCE_NAME}-ip",
            "instance_name": INSTANCE_NAME,
            "instance_id": instance.id,
        },
        pulumi.ResourceOptions(depends_on=[instance, static_ip], delete_before_replace=True),
    )
    dns = DnsRecord(
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

    # The provisioning chain: each step carries the instance id in its triggers, so a new
    # instance re-runs them all (depends_on alone never would).
    previous: pulumi.Resource = attachment
    steps = [
        ("wait-cloud-init", "cloud-init status --wait", 0, None),
        ("configure", "sh /opt/raxx/configure.sh", fail_ssh_times, db_password),
        ("modules", "sh /opt/raxx/modules.sh", 0, None),
    ]
    for step, script, failures, secret in steps:
        args: dict[str, object] = {
            "state_dir": state_dir,
            "connection_host": static_ip.ip_address,
            "create": script,
            "triggers": [instance.id],
            "fail_ssh_times": failures,
        }
        if secret is not None:
            args["environment"] = {"DB_PASSWORD": secret}
        previous = Command(
            f"{INSTANCE_NAME}-{step}", args, pulumi.ResourceOptions(depends_on=[previous])
        )

    pulumi.export("instance_name", INSTANCE_NAME)
    pulumi.export("instance_id", instance.id)
    pulumi.export("static_ip", static_ip.ip_address)
    pulumi.export("dns_record_id", dns.id)
    pulumi.export("db_password", db_password)
