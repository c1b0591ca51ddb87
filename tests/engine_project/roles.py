"""The plan guard's roles for the stand-in types: the real stack's roles, one for one."""

from __future__ import annotations

from operations import guard

STANDIN_ROLES = {
    **guard.KNOWN_TYPES,
    "pulumi-python:dynamic/standin:Instance": guard.Role.INSTANCE,
    "pulumi-python:dynamic/standin:InstancePublicPorts": guard.Role.PORTS,
    "pulumi-python:dynamic/standin:StaticIp": guard.Role.STATIC_IP,
    "pulumi-python:dynamic/standin:StaticIpAttachment": guard.Role.ATTACHMENT,
    "pulumi-python:dynamic/standin:DnsRecord": guard.Role.DNS_RECORD,
    "pulumi-python:dynamic/standin:Command": guard.Role.PROVISIONING,
}
