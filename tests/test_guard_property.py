"""Properties of the plan guard over generated plans, in both file forms.

The forbidden, rebuild and safe steps are generated from the design's rules written out here, not
from the guard's tables, so a mistake in the guard's classification shows up as a counterexample.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from operations import guard
from operations.guard import Step, Verdict
from tests.test_guard import (
    ATTACHMENT,
    COMPONENT,
    INSTANCE,
    LOCAL,
    MUST_SURVIVE,
    PORTS,
    PROVIDER,
    REMOTE,
    UNKNOWN,
    delete_protected_message,
    replace_protected_message,
    urn,
)

REPLACEMENT_OPS = [
    "replace", "create-replacement", "delete-replaced", "read-replacement",
    "import-replacement", "remove-pending-replace",
]  # fmt: skip
KEEPING_OPS = [
    "same", "create", "update", "read", "refresh", "import", "discard", "discard-replaced",
]  # fmt: skip
INTERNAL = [PROVIDER, "pulumi:providers:cloudflare", "pulumi:pulumi:Stack", COMPONENT]
EVERY_TYPE = [INSTANCE, PORTS, ATTACHMENT, REMOTE, LOCAL, UNKNOWN, *MUST_SURVIVE, *INTERNAL]

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=12)


def step(types, ops):
    return st.builds(
        lambda t, n, op: Step(
            urn(t, n, None if t.startswith(("pulumi:", "raxx:")) else COMPONENT), op
        ),
        st.sampled_from(types),
        names,
        st.sampled_from(ops),
    )


forbidden_steps = st.one_of(
    step(MUST_SURVIVE, ["delete", *REPLACEMENT_OPS]),
    step([INSTANCE, PORTS, ATTACHMENT], ["delete"]),
    step([UNKNOWN, "gcp:compute/instance:Instance"], ["delete", *REPLACEMENT_OPS]),
    step([INSTANCE, PORTS, ATTACHMENT, REMOTE, *MUST_SURVIVE, UNKNOWN], ["obliterate"]),
)
rebuild_steps = step([INSTANCE], REPLACEMENT_OPS)
safe_steps = st.one_of(
    step(EVERY_TYPE, KEEPING_OPS),
    step([PORTS, ATTACHMENT, REMOTE, LOCAL], REPLACEMENT_OPS),
    step([REMOTE, LOCAL], ["delete"]),
    step(INTERNAL, ["delete", "obliterate", *REPLACEMENT_OPS]),
)
any_step = st.one_of(forbidden_steps, rebuild_steps, safe_steps)
any_error = st.one_of(
    st.just(replace_protected_message(urn(INSTANCE, "raxx-tickets"))),
    st.just(delete_protected_message(urn(INSTANCE, "raxx-tickets"))),
    st.builds(lambda t: replace_protected_message(urn(t, "x")), st.sampled_from(EVERY_TYPE)),
    st.text(max_size=40),
)


def as_event_log(steps: list[Step], errors: list[str]) -> str:
    # A real log always has a prelude (and an empty file is rightly unreadable).
    events = (
        [{"preludeEvent": {"config": {}}}]
        + [
            {"resourcePreEvent": {"metadata": {"op": s.op, "urn": s.urn, "type": s.type_token}}}
            for s in steps
        ]
        + [{"diagnosticEvent": {"message": e, "severity": "error", "color": "raw"}} for e in errors]
    )
    return "\n".join(json.dumps({"sequence": n, "timestamp": n, **e}) for n, e in enumerate(events))


def as_preview_json(steps: list[Step], errors: list[str]) -> str:
    return json.dumps(
        {
            "steps": [{"op": s.op, "urn": s.urn} for s in steps],
            "diagnostics": [{"message": f"error: {e}", "severity": "error"} for e in errors],
        }
    )


def verdicts(steps: list[Step], errors: list[str]) -> set[Verdict]:
    """The verdict of the plan judged directly and read back from both file forms."""
    results = {guard.judge(steps, errors).verdict}
    for text in (as_event_log(steps, errors), as_preview_json(steps, errors)):
        read_steps, read_errors = guard.read_plan(text)
        results.add(guard.judge(read_steps, read_errors).verdict)
    return results


@settings(max_examples=200, deadline=None)
@given(
    forbidden=st.lists(forbidden_steps, min_size=1, max_size=3),
    others=st.lists(any_step, max_size=15),
    errors=st.lists(any_error, max_size=3),
    data=st.data(),
)
def test_any_forbidden_step_makes_the_plan_forbidden(forbidden, others, errors, data):
    plan = data.draw(st.permutations(forbidden + others), label="plan in some order")
    assert verdicts(plan, errors) == {Verdict.FORBIDDEN}


@settings(max_examples=200, deadline=None)
@given(
    rebuild=st.lists(rebuild_steps, max_size=3),
    safe=st.lists(safe_steps, max_size=15),
    data=st.data(),
)
def test_without_forbidden_steps_the_instance_decides(rebuild, safe, data):
    plan = data.draw(st.permutations(rebuild + safe), label="plan in some order")
    expected = Verdict.REBUILD if rebuild else Verdict.SAFE
    assert verdicts(plan, []) == {expected}


@settings(max_examples=100, deadline=None)
@given(safe=st.lists(safe_steps, max_size=10), data=st.data())
def test_protection_error_on_the_instance_is_a_rebuild_in_any_safe_plan(safe, data):
    error = replace_protected_message(urn(INSTANCE, "raxx-tickets"))
    plan = data.draw(st.permutations(safe))
    assert verdicts(plan, [error]) == {Verdict.REBUILD}
