"""The wait-for-ssh step of the program (F6), under Pulumi's mock runtime.

What this proves: what the real program asks the engine for — a `command:local:Command` first
in the provisioning chain, running `python -m freescout.wait_for_ssh` on the static IP's port 22
with the interpreter that runs the program, triggered by the instance's identity, after the
ports, the attachment and the DNS record, and before every remote step. That the command line
itself works is proven in tests/test_wait_for_ssh.py (real sockets, real sshd). What it does
not prove: how pulumi-command runs it (FakeCloud stands in for the provider).
"""

from __future__ import annotations

import shlex
import sys

import pytest

from freescout import scripts
from freescout.offline_plan import Evaluation, Registration
from freescout.provisioning import SSH_PORT, WAIT_FOR_SSH_DEADLINE_SECONDS
from tests import program_mocks as pm

INSTANCE = "aws:lightsail/instance:Instance"
PORTS = "aws:lightsail/instancePublicPorts:InstancePublicPorts"
STATIC_IP = "aws:lightsail/staticIp:StaticIp"
ATTACHMENT = "aws:lightsail/staticIpAttachment:StaticIpAttachment"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
REMOTE = "command:remote:Command"
LOCAL = "command:local:Command"
NAME = "freescout-wait-for-ssh"


@pytest.fixture(scope="module")
def prod() -> Evaluation:
    return pm.run()


def chain(ev: Evaluation) -> list[Registration]:
    return [r for r in ev.creation_order() if r.type in (REMOTE, LOCAL)]


def wait_step(ev: Evaluation) -> Registration:
    (found,) = [r for r in ev.registrations if r.name == NAME]
    return found


def ancestors(ev: Evaluation, reg: Registration) -> set[str]:
    """Every URN `reg` depends on, directly or through other resources' dependencies."""
    by_urn = ev.by_urn()
    seen: set[str] = set()
    todo = list(reg.depends_on)
    while todo:
        urn = todo.pop()
        if urn in seen or urn not in by_urn:
            continue
        seen.add(urn)
        todo.extend(by_urn[urn].depends_on)
    return seen


def test_the_wait_is_the_first_step_and_runs_locally(prod: Evaluation) -> None:
    step = wait_step(prod)
    assert step.type == LOCAL, step.urn
    assert chain(prod)[0].urn == step.urn, [r.name for r in chain(prod)]
    assert chain(prod)[1].name == "freescout-wait-for-cloud-init"
    assert step.protect is False and step.delete_before_replace is False, step.urn


def test_it_waits_for_port_22_of_the_static_ip_with_this_interpreter(prod: Evaluation) -> None:
    step, ip = wait_step(prod), prod.one(STATIC_IP)
    assert shlex.split(step.inputs["create"])[-8:] == [
        "$py", "-m", "freescout.wait_for_ssh", "192.0.2.10",
        "--port", "22", "--deadline", "900",
    ], step.inputs["create"]
    assert sys.executable not in step.inputs["create"], "no machine-specific path in an input"
    assert step.inputs["create"] == scripts.python_module_command(
        "freescout.wait_for_ssh", "192.0.2.10", "--port", str(SSH_PORT),
        "--deadline", str(WAIT_FOR_SSH_DEADLINE_SECONDS))
    assert ip.urn in step.property_dependencies["create"], (
        f"{step.urn}: the host must be the static IP's address, not the instance's")
    assert "stdin" not in step.inputs and "environment" not in step.inputs, step.urn


def test_its_triggers_carry_the_instance_identity(prod: Evaluation) -> None:
    step, inst = wait_step(prod), prod.one(INSTANCE)
    assert step.inputs["triggers"] == [
        "arn:aws:lightsail:us-east-1:000000000000:Instance/mock-1", "2000-01-01T00:00:01Z",
    ], step.inputs.get("triggers")
    assert inst.urn in step.property_dependencies["triggers"], step.urn


def test_a_new_instance_reruns_the_wait() -> None:
    first, second = pm.run(instance_generation=1), pm.run(instance_generation=2)
    assert wait_step(first).inputs["triggers"] != wait_step(second).inputs["triggers"]
    assert wait_step(first).inputs["create"] == wait_step(second).inputs["create"]


def test_it_waits_for_the_open_port_the_attached_ip_and_the_dns_record(
        prod: Evaluation) -> None:
    step = wait_step(prod)
    for type_ in (PORTS, ATTACHMENT, DNS):
        assert prod.one(type_).urn in step.depends_on, f"{step.urn} must wait for {type_}"


def test_every_other_step_depends_on_it(prod: Evaluation) -> None:
    step = wait_step(prod)
    others = [r for r in chain(prod) if r.urn != step.urn]
    assert len([r for r in others if r.type == REMOTE]) == 13
    for reg in others:
        assert step.urn in ancestors(prod, reg), f"{reg.urn} does not wait for SSH"
    # Not vacuous: the wait itself depends on none of the other steps.
    assert not ancestors(prod, step) & {r.urn for r in others}


def test_an_empty_module_list_keeps_the_wait_first() -> None:
    ev = pm.run(pm.prod_settings(modules="[]"))
    steps = chain(ev)
    assert steps[0].name == NAME and steps[0].type == LOCAL
    assert all(wait_step(ev).urn in ancestors(ev, r) for r in steps[1:])
