"""The host: the Lightsail instance, its public ports, the static IP and its attachment."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from freescout.settings import Settings

PUBLIC_PORTS = (22, 80, 443)


class Host(pulumi.ComponentResource):
    """The FreeScout instance and its network identity.

    Rules (DESIGN.md, "The stack"):
    - the instance's `protect` comes from config (default true) and, its name being fixed, a
      replacement deletes before it creates;
    - the static IP is always protected: it must survive every rebuild (DNS points at it);
    - the public ports and the attachment are never protected and are replaced with the
      instance (`replace_with`), so a rebuild re-opens the ports and re-attaches the IP. Their
      inputs alone would not do it: the instance keeps its name. The engine honours the option
      (checked on CLI v3.274.0 with SDK 3.272.0): with the instance's delete-before-replace,
      both are deleted before the old instance and created after the new one; `depends_on`
      alone leaves a dependent untouched.
    """

    def __init__(self, name: str, settings: Settings, user_data: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("raxx:freescout:Host", name, None, opts)
        self.instance = aws.lightsail.Instance(
            f"{name}-instance",
            name=settings.instance_name,
            availability_zone=settings.availability_zone,
            blueprint_id=settings.blueprint_id,
            bundle_id=settings.bundle_id,
            user_data=user_data,
            opts=pulumi.ResourceOptions(
                parent=self, protect=settings.protect, delete_before_replace=True
            ),
        )
        self.ports = aws.lightsail.InstancePublicPorts(
            f"{name}-ports",
            instance_name=self.instance.name,
            port_infos=[
                aws.lightsail.InstancePublicPortsPortInfoArgs(
                    protocol="tcp", from_port=port, to_port=port
                )
                for port in PUBLIC_PORTS
            ],
            opts=pulumi.ResourceOptions(
                parent=self, protect=False, replace_with=[self.instance]
            ),
        )
        self.static_ip = aws.lightsail.StaticIp(
            f"{name}-static-ip",
            name=settings.static_ip_name,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.attachment = aws.lightsail.StaticIpAttachment(
            f"{name}-static-ip-attachment",
            static_ip_name=self.static_ip.name,
            instance_name=self.instance.name,
            opts=pulumi.ResourceOptions(
                parent=self, protect=False, replace_with=[self.instance]
            ),
        )
        self.register_outputs({
            "instance_name": self.instance.name,
            "instance_arn": self.instance.arn,
            "static_ip": self.static_ip.ip_address,
        })
