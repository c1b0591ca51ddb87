"""The program under Pulumi's mock runtime: every resource, its options, inputs and order.

What this proves: what the real program (freescout.program.define, the same code
`__main__.py` runs) asks the engine for — resource types, names, protect,
delete-before-replace, replace-with, dependencies, inputs and exports. What it does not prove:
how the providers or the cloud respond (FakeCloud stands in for them).
"""

from __future__ import annotations

import json

import pulumi
import pytest

from freescout import modules as catalog
from freescout import program, userdata
from freescout.offline_plan import Evaluation, Registration, evaluate
from freescout.provisioning import DIAL_ERROR_LIMIT, PER_DIAL_TIMEOUT
from freescout.settings import InvalidConfig
from operations.errors import UsageError
from tests import program_mocks as pm

INSTANCE = "aws:lightsail/instance:Instance"
PORTS = "aws:lightsail/instancePublicPorts:InstancePublicPorts"
STATIC_IP = "aws:lightsail/staticIp:StaticIp"
ATTACHMENT = "aws:lightsail/staticIpAttachment:StaticIpAttachment"
PASSWORD = "random:index/randomPassword:RandomPassword"
PARAMETER = "aws:ssm/parameter:Parameter"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
REMOTE = "command:remote:Command"
LOCAL = "command:local:Command"
COMPONENTS = {
    "raxx:freescout:Host",
    "raxx:freescout:Secrets",
    "raxx:freescout:Dns",
    "raxx:freescout:Provisioning",
}


@pytest.fixture(scope="module")
def prod() -> Evaluation:
    return pm.run()


def steps(ev: Evaluation) -> list[Registration]:
    """The provisioning commands in creation order."""
    return [r for r in ev.creation_order() if r.type in (REMOTE, LOCAL)]


def test_exactly_the_resources_of_the_design(prod: Evaluation) -> None:
    counts: dict[str, int] = {}
    for reg in prod.registrations:
        counts[reg.type] = counts.get(reg.type, 0) + 1
    assert counts == {
        "pulumi:pulumi:Stack": 1,
        **{c: 1 for c in COMPONENTS},
        INSTANCE: 1, PORTS: 1, STATIC_IP: 1, ATTACHMENT: 1,
        PASSWORD: 3, PARAMETER: 3, DNS: 1,
        REMOTE: 13, LOCAL: 3,
    }, counts


def test_only_instance_static_ip_and_dns_are_protected(prod: Evaluation) -> None:
    expected = {INSTANCE: True, STATIC_IP: True, DNS: True}
    for reg in prod.registrations:
        if not reg.custom:
            continue
        assert reg.protect is expected.get(reg.type, False), (
            f"{reg.urn}: protect={reg.protect}, expected {expected.get(reg.type, False)}")


def test_only_the_instance_deletes_before_replace(prod: Evaluation) -> None:
    for reg in prod.registrations:
        assert reg.delete_before_replace is (reg.type == INSTANCE), (
            f"{reg.urn}: deleteBeforeReplace={reg.delete_before_replace}")


def test_every_resource_is_inside_a_raxx_component(prod: Evaluation) -> None:
    by_urn = prod.by_urn()
    for reg in prod.registrations:
        if reg.custom:
            assert by_urn[reg.parent].type in COMPONENTS, f"{reg.urn}: parent {reg.parent}"
        elif reg.type in COMPONENTS:
            assert reg.type.startswith("raxx:freescout:"), reg.urn


def test_instance_inputs(prod: Evaluation) -> None:
    inst = prod.one(INSTANCE)
    assert inst.inputs == {
        "name": "raxx-tickets",
        "availabilityZone": "us-east-1a",
        "blueprintId": "lamp_ls_1_0",
        "bundleId": "micro_3_0",
        "userData": userdata.render("tickets.raxx.app"),
    }, f"{inst.urn}: {sorted(inst.inputs)}"
    assert inst.depends_on == (), f"{inst.urn} depends on {inst.depends_on}"


def test_ports_and_attachment_follow_the_instance(prod: Evaluation) -> None:
    inst, ip = prod.one(INSTANCE), prod.one(STATIC_IP)
    ports = prod.one(PORTS)
    assert ports.inputs["instanceName"] == "raxx-tickets", ports.urn
    assert sorted((p["fromPort"], p["toPort"], p["protocol"]) for p in ports.inputs["portInfos"]) \
        == [(22, 22, "tcp"), (80, 80, "tcp"), (443, 443, "tcp")], ports.urn
    attachment = prod.one(ATTACHMENT)
    for reg in (ports, attachment):
        assert reg.replace_with == (inst.urn,), f"{reg.urn}: replaceWith={reg.replace_with}"
        assert inst.urn in reg.property_dependencies.get("instanceName", ()), (
            f"{reg.urn}: instanceName must come from the instance's output")
    assert attachment.inputs["staticIpName"] == "raxx-tickets-ip", attachment.urn
    assert ip.urn in attachment.property_dependencies["staticIpName"], attachment.urn
    assert ip.inputs == {"name": "raxx-tickets-ip"}, ip.urn


def test_dns_record_points_at_the_static_ip(prod: Evaluation) -> None:
    record, ip = prod.one(DNS), prod.one(STATIC_IP)
    assert record.inputs["content"] == "192.0.2.10", record.urn
    assert record.property_dependencies["content"] == (ip.urn,), (
        f"{record.urn}: content must be the static IP's address, not the instance's")
    assert prod.one(INSTANCE).urn not in record.depends_on, record.urn
    assert record.inputs["name"] == "tickets.raxx.app", record.urn
    assert record.inputs["type"] == "A", record.urn
    assert record.inputs["proxied"] is False, record.urn
    assert record.inputs["zoneId"] == pm.TEST_ZONE_ID, record.urn


def test_passwords_feed_secure_parameters_and_know_nothing_of_the_instance(
        prod: Evaluation) -> None:
    by_urn = prod.by_urn()
    passwords = {r.urn: r for r in prod.by_type(PASSWORD)}
    names = set()
    for param in prod.by_type(PARAMETER):
        assert param.inputs["type"] == "SecureString", param.urn
        assert param.inputs["value"] == "[secret]", f"{param.urn}: value not marked secret"
        (source,) = param.property_dependencies["value"]
        assert source in passwords, f"{param.urn}: value from {source}"
        assert param.secret_inputs["value"].startswith("Mock"), param.urn
        names.add(param.inputs["name"])
    assert names == {f"/freescout/prod/{r}_password" for r in ("db_user", "db_root", "admin")}
    for reg in (*passwords.values(), *prod.by_type(PARAMETER)):
        deps = {by_urn[u].type for u in reg.depends_on}
        assert deps <= {PASSWORD}, f"{reg.urn} depends on {deps}: a rebuild must not touch it"
    for pw in passwords.values():
        assert pw.inputs.get("keepers") is None, f"{pw.urn}: keepers would regenerate it"
        assert pw.inputs["special"] is False and pw.inputs["length"] >= 32, pw.urn


def test_provisioning_chain_order(prod: Evaluation) -> None:
    chain = steps(prod)
    names = [r.name for r in chain]
    aliases = [m.alias for m in catalog.install_order(catalog.SHORT_NAMES)]
    assert names == [
        "freescout-wait-for-ssh",
        "freescout-wait-for-cloud-init",
        "freescout-configure",
        "freescout-pre-install-snapshot",
        *[f"freescout-module-{a}" for a in aliases],
        "freescout-cache-clear",
        "freescout-post-install-snapshot",
    ], names
    for before, after in zip(chain, chain[1:], strict=False):
        assert before.urn in after.depends_on, f"{after.urn} must depend on {before.urn}"
    first = chain[0]
    for type_ in (ATTACHMENT, PORTS, DNS):
        assert prod.one(type_).urn in first.depends_on, f"{first.urn} must wait for {type_}"
    assert [r.type for r in chain].count(LOCAL) == 3
    assert chain[0].type == LOCAL and chain[3].type == LOCAL and chain[-1].type == LOCAL


def test_workflows_after_tags_and_custom_fields(prod: Evaluation) -> None:
    names = [r.name for r in steps(prod)]
    wf = names.index("freescout-module-workflows")
    assert names.index("freescout-module-tags") < wf, names
    assert names.index("freescout-module-customfields") < wf, names


def test_every_step_is_triggered_by_the_instance_identity(prod: Evaluation) -> None:
    inst = prod.one(INSTANCE)
    for step in steps(prod):
        assert step.inputs["triggers"] == [
            "arn:aws:lightsail:us-east-1:000000000000:Instance/mock-1", "2000-01-01T00:00:01Z",
        ], f"{step.urn}: triggers={step.inputs.get('triggers')}"
        assert inst.urn in step.property_dependencies["triggers"], step.urn
        assert step.protect is False, step.urn


def test_remote_steps_retry_ssh_for_minutes(prod: Evaluation) -> None:
    assert DIAL_ERROR_LIMIT * PER_DIAL_TIMEOUT >= 300
    for step in prod.by_type(REMOTE):
        # The command provider keeps the whole connection secret (it holds the private key).
        assert step.inputs["connection"] == "[secret]", f"{step.urn}: connection not secret"
        conn = step.secret_inputs["connection"]
        assert conn["dialErrorLimit"] == DIAL_ERROR_LIMIT, step.urn
        assert conn["perDialTimeout"] == PER_DIAL_TIMEOUT, step.urn
        assert conn["host"] == "192.0.2.10", f"{step.urn}: connect to the static IP"
        assert conn["user"] == "admin", step.urn
        assert conn["privateKey"] == pm.TEST_KEY, step.urn


def test_secrets_travel_only_on_stdin(prod: Evaluation) -> None:
    everything = json.dumps([r.secret_inputs for r in prod.registrations])
    configure = next(r for r in prod.by_type(REMOTE) if r.name == "freescout-configure")
    assert configure.inputs["stdin"] == "[secret]", configure.urn
    lines = configure.secret_inputs["stdin"].split("\n")
    assert len(lines) == 5 and lines[4] == "", f"{configure.urn}: 4 lines, each ending in \\n"
    for module in catalog.CATALOG:
        step = next(r for r in prod.by_type(REMOTE) if r.name == f"freescout-module-{module.alias}")
        license_key = pm.test_license(module.short)
        assert step.inputs["stdin"] == "[secret]", step.urn
        assert step.secret_inputs["stdin"] == license_key + "\n", step.urn
        assert everything.count(license_key) == 1, f"{license_key} appears outside {step.urn}"
        assert f"'{module.alias}'" in step.inputs["create"] or \
            f" {module.alias} " in step.inputs["create"], f"{step.urn}: alias not passed"
    for pw in prod.by_type(PASSWORD):
        value = pw.secret_inputs.get("result") or next(
            p for p in prod.by_type(PARAMETER) if p.name == pw.name).secret_inputs["value"]
        for reg in prod.registrations:
            shown = json.dumps({k: v for k, v in reg.secret_inputs.items() if k != "stdin"})
            if reg.type != PARAMETER:
                assert value not in shown, f"{reg.urn} carries a password outside stdin"


def test_stack_outputs(prod: Evaluation) -> None:
    out = prod.outputs
    assert out["instance_name"] == "raxx-tickets"
    assert out["static_ip"] == "192.0.2.10"
    assert out["static_ip_name"] == "raxx-tickets-ip"
    assert out["hostname"] == "tickets.raxx.app"
    assert out["ssh_user"] == "admin"
    assert out["modules"] == [m.alias for m in catalog.install_order(catalog.SHORT_NAMES)]


def test_protect_false_from_config_unprotects_only_the_instance() -> None:
    ev = pm.run(pm.prod_settings(protect="false"))
    assert ev.one(INSTANCE).protect is False, ev.one(INSTANCE).urn
    assert ev.one(STATIC_IP).protect is True, ev.one(STATIC_IP).urn
    assert ev.one(DNS).protect is True, ev.one(DNS).urn
    assert ev.one(INSTANCE).delete_before_replace is True


def test_protect_defaults_to_true_when_unset() -> None:
    ev = pm.run(pm.prod_settings(protect=None))
    assert ev.one(INSTANCE).protect is True, ev.one(INSTANCE).urn


def test_empty_module_list_installs_nothing_but_keeps_the_chain() -> None:
    ev = pm.run(pm.prod_settings(modules="[]"))
    names = [r.name for r in steps(ev)]
    assert names == [
        "freescout-wait-for-ssh", "freescout-wait-for-cloud-init", "freescout-configure",
        "freescout-pre-install-snapshot",
        "freescout-cache-clear", "freescout-post-install-snapshot",
    ], names
    assert ev.outputs["modules"] == []


def test_module_subset_in_dependency_order() -> None:
    ev = pm.run(pm.prod_settings(modules='["workflows", "slack", "tags", "custom_fields"]'))
    names = [r.name for r in steps(ev) if "-module-" in r.name]
    assert names == ["freescout-module-customfields", "freescout-module-tags",
                     "freescout-module-workflows", "freescout-module-slack"], names


def engine_style(values: dict) -> dict[str, str]:
    """Config as the engine hands it to a program: every value a string (lists as JSON)."""
    def text(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        return v if isinstance(v, str) else json.dumps(v)
    return {k: text(v) for k, v in values.items()}


def via_main(values: dict, secret_keys: set[str]):
    """A `define` that runs program.main() (what __main__.py runs) on runtime config."""
    def define(settings, private_key):
        pulumi.runtime.set_all_config(engine_style(values), sorted(secret_keys))
        program.main()
        return {}
    return define


def test_main_reads_the_stack_config_from_the_runtime(tmp_path) -> None:
    key = tmp_path / "lightsail.pem"
    key.write_text("TEST PRIVATE KEY FILE")
    values, secret_keys = pm.prod_config(ssh_private_key_path=str(key), protect=False)
    ev = evaluate(pm.prod_settings(), define=via_main(values, secret_keys))
    assert ev.one(INSTANCE).protect is False, ev.one(INSTANCE).urn
    assert len([r for r in ev.by_type(REMOTE) if "-module-" in r.name]) == 10
    for step in ev.by_type(REMOTE):
        assert step.secret_inputs["connection"]["privateKey"] == "TEST PRIVATE KEY FILE", step.urn


def test_main_refuses_bad_config_before_declaring_anything(tmp_path) -> None:
    values, secret_keys = pm.prod_config(license_tags="REPLACE_WITH_TAGS_KEY", hostname="x")
    with pytest.raises(InvalidConfig) as caught:
        evaluate(pm.prod_settings(), define=via_main(values, secret_keys))
    assert {p.key for p in caught.value.problems} == {"freescout:license_tags",
                                                      "freescout:hostname"}


def test_main_stops_an_update_without_the_private_key(tmp_path) -> None:
    values, secret_keys = pm.prod_config(ssh_private_key_path=str(tmp_path / "absent.pem"))
    with pytest.raises(UsageError) as caught:
        evaluate(pm.prod_settings(), define=via_main(values, secret_keys))
    assert "pulumi config set freescout:ssh_private_key_path" in caught.value.render()
