"""The DNS A record of the help desk's host name."""

from __future__ import annotations

import pulumi
import pulumi_cloudflare as cloudflare

from freescout.settings import Settings


class Dns(pulumi.ComponentResource):
    """`hostname` -> the static IP's address: never the instance's, so DNS stays valid
    through a rebuild. Always protected; not proxied (the host terminates TLS itself)."""

    def __init__(self, name: str, settings: Settings, address: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("raxx:freescout:Dns", name, None, opts)
        self.record = cloudflare.DnsRecord(
            f"{name}-a-record",
            zone_id=settings.cloudflare_zone_id,
            name=settings.hostname,
            type="A",
            content=address,
            ttl=300,
            proxied=False,
            comment=f"FreeScout help desk (Pulumi stack {settings.stack})",
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.register_outputs({"hostname": self.record.name})
