"""Rotation invariance (issue point 5) and re-runs on a new instance, under the mock runtime.

Rotating a password or a license key must change no input of the instance (so it can never
force a rebuild) while it does change the step that carries it. A new instance (new ARN and
creation time) must change every provisioning step's triggers, so every step re-runs.
"""

from __future__ import annotations

from freescout import modules as catalog
from freescout import settings as config
from freescout.offline_plan import Evaluation, Registration
from tests import program_mocks as pm

INSTANCE = "aws:lightsail/instance:Instance"
STEP_TYPES = ("command:remote:Command", "command:local:Command")


def instance(ev: Evaluation) -> Registration:
    return ev.one(INSTANCE)


def step(ev: Evaluation, name: str) -> Registration:
    return next(r for r in ev.registrations if r.name == name and r.type in STEP_TYPES)


def assert_instance_unchanged(before: Evaluation, after: Evaluation) -> None:
    a, b = instance(before), instance(after)
    assert a.secret_inputs == b.secret_inputs, f"{a.urn}: inputs changed on a rotation"
    assert a.protect == b.protect and a.delete_before_replace == b.delete_before_replace, a.urn
    assert a.depends_on == b.depends_on, a.urn


def test_rotating_every_license_changes_no_input_of_the_instance() -> None:
    before = pm.run()
    rotated = {m.license_key: pm.test_license(m.short, version=2) for m in catalog.CATALOG}
    after = pm.run(pm.prod_settings(**rotated))
    assert_instance_unchanged(before, after)
    # Not vacuous: the license did change the module's step (an update of that step only).
    name = "freescout-module-tags"
    assert step(before, name).secret_inputs["stdin"] != step(after, name).secret_inputs["stdin"]
    assert step(before, name).inputs["triggers"] == step(after, name).inputs["triggers"], name


def test_new_passwords_change_no_input_of_the_instance() -> None:
    before = pm.run(password_salt="a")
    after = pm.run(password_salt="b")
    assert_instance_unchanged(before, after)
    name = "freescout-configure"
    assert step(before, name).secret_inputs["stdin"] != step(after, name).secret_inputs["stdin"]
    param = "aws:ssm/parameter:Parameter"
    params = {r.name: r.secret_inputs["value"] for r in before.by_type(param)}
    changed = {r.name: r.secret_inputs["value"] for r in after.by_type(param)}
    assert params.keys() == changed.keys() and all(params[k] != changed[k] for k in params)


def test_mail_token_changes_no_input_of_the_instance() -> None:
    before = pm.run(pm.prod_settings())
    values, secret_keys = pm.prod_config(mail_token="test-mail-token-2")
    secret_keys.add("freescout:mail_token")
    after = pm.run(config.from_mapping(values, secret_keys, stack="prod"))
    assert_instance_unchanged(before, after)
    configure = step(after, "freescout-configure").secret_inputs["stdin"].split("\n")
    assert configure[3] == "test-mail-token-2"


def test_a_new_instance_retriggers_every_step() -> None:
    first = pm.run(instance_generation=1)
    second = pm.run(instance_generation=2)
    names = [r.name for r in first.registrations if r.type in STEP_TYPES]
    assert len(names) == 16
    for name in names:
        a, b = step(first, name), step(second, name)
        assert a.inputs["triggers"] != b.inputs["triggers"], f"{b.urn}: would not re-run"
    # The passwords and their parameters do not see the instance at all.
    for type_ in ("random:index/randomPassword:RandomPassword", "aws:ssm/parameter:Parameter"):
        later = {r.urn: r for r in second.by_type(type_)}
        for a in first.by_type(type_):
            assert a.secret_inputs == later[a.urn].secret_inputs, f"{a.urn}: changed"
