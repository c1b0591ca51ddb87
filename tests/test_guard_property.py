"""Properties of the plan guard over generated plans, in both file forms.

The forbidden, rebuild and safe changes are generated from the design's rules written out here,
not from the guard's tables, so a mistake in the guard's classification shows up as a
counterexample. A change is what happens to one resource (one URN): the steps the engine emits
for it, which the guard must judge together (a `delete-replaced` with nothing in its place is a
plain delete). The steps of a plan are shuffled: the verdict must not depend on their order.
"""

from __future__ import annotations

import json

import pytest
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
    replace_dependent_protected_message,
    replace_protected_message,
    urn,
)

# What the engine emits for one resource (pkg/resource/deploy/step_generator.go).
REPLACEMENTS = [
    ("replace",),  # what `preview --json` shows
    ("create-replacement", "replace", "delete-replaced"),
    ("delete-replaced", "replace", "create-replacement"),  # delete-before-replace
    ("replace", "create-replacement"),  # resumed: the old object was deleted by an earlier run
    ("create-replacement",),
    ("read-replacement", "replace", "delete-replaced"),
    ("import-replacement", "replace", "delete-replaced"),
]
PLAIN_DELETES = [
    ("delete",),
    ("delete-replaced",),  # left the program while what it depends on is replaced
    ("delete-replaced", "remove-pending-replace"),
    ("remove-pending-replace",),  # left the program after an interrupted replacement
]
KEEPING = [
    (op,)
    for op in (
        "same",
        "create",
        "update",
        "read",
        "refresh",
        "import",
        "discard",
        "discard-replaced",
    )
]
INTERNAL = [PROVIDER, "pulumi:providers:cloudflare", "pulumi:pulumi:Stack", COMPONENT]
EVERY_TYPE = [INSTANCE, PORTS, ATTACHMENT, REMOTE, LOCAL, UNKNOWN, *MUST_SURVIVE, *INTERNAL]

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=12)
Change = tuple[str, str, tuple[str, ...]]  # type token, name, ops


def change(types, op_sequences):
    return st.tuples(st.sampled_from(types), names, st.sampled_from(op_sequences))


forbidden_changes = st.one_of(
    change(MUST_SURVIVE, REPLACEMENTS + PLAIN_DELETES),
    change([INSTANCE, PORTS, ATTACHMENT], PLAIN_DELETES),
    change([UNKNOWN, "gcp:compute/instance:Instance"], REPLACEMENTS + PLAIN_DELETES),
    change([INSTANCE, PORTS, ATTACHMENT, REMOTE, *MUST_SURVIVE, UNKNOWN], [("obliterate",)]),
)
rebuild_changes = change([INSTANCE], REPLACEMENTS)
safe_changes = st.one_of(
    change(EVERY_TYPE, KEEPING),
    change([PORTS, ATTACHMENT, REMOTE, LOCAL], REPLACEMENTS),
    change([REMOTE, LOCAL], PLAIN_DELETES),
    change(INTERNAL, PLAIN_DELETES + REPLACEMENTS + [("obliterate",)]),
)
any_change = st.one_of(forbidden_changes, rebuild_changes, safe_changes)
any_error = st.one_of(
    st.just(replace_protected_message(urn(INSTANCE, "raxx-tickets"))),
    st.just(delete_protected_message(urn(INSTANCE, "raxx-tickets"))),
    st.builds(lambda t: replace_protected_message(urn(t, "x")), st.sampled_from(EVERY_TYPE)),
    st.just(""),  # an error with an empty message is still an error
    st.text(max_size=40),
)


def steps_of(changes: list[Change]) -> list[Step]:
    """Each change's steps, each change on its own URN (the index keeps names apart)."""
    steps = []
    for index, (type_token, name, ops) in enumerate(changes):
        parent = None if type_token.startswith(("pulumi:", "raxx:")) else COMPONENT
        steps += [Step(urn(type_token, f"{name}-{index}", parent), op) for op in ops]
    return steps


def as_event_log(steps: list[Step], errors: list[str]) -> str:
    # A whole log: a prelude first, a summary of the finished run, the closing cancel event.
    events = (
        [{"preludeEvent": {"config": {}}}]
        + [
            {"resourcePreEvent": {"metadata": {"op": s.op, "urn": s.urn, "type": s.type_token}}}
            for s in steps
        ]
        + [{"diagnosticEvent": {"message": e, "severity": "error", "color": "raw"}} for e in errors]
        + [
            {"summaryEvent": {"isPreview": True, "result": "failed" if errors else "succeeded"}},
            {"cancelEvent": {}},
        ]
    )
    return "\n".join(json.dumps({"sequence": n, "timestamp": n, **e}) for n, e in enumerate(events))


def as_preview_json(steps: list[Step], errors: list[str]) -> str:
    # Every step, as `preview --json --show-replacement-steps` prints them.
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
        results.add(guard.judge_plan(guard.read_plan(text)).verdict)
    return results


@settings(max_examples=200, deadline=None)
@given(
    forbidden=st.lists(forbidden_changes, min_size=1, max_size=3),
    others=st.lists(any_change, max_size=12),
    errors=st.lists(any_error, max_size=3),
    data=st.data(),
)
def test_any_forbidden_change_makes_the_plan_forbidden(forbidden, others, errors, data):
    changes = data.draw(st.permutations(forbidden + others), label="changes")
    plan = data.draw(st.permutations(steps_of(changes)), label="steps in some order")
    assert verdicts(plan, errors) == {Verdict.FORBIDDEN}


@settings(max_examples=200, deadline=None)
@given(
    rebuild=st.lists(rebuild_changes, max_size=3),
    safe=st.lists(safe_changes, max_size=12),
    data=st.data(),
)
def test_without_forbidden_changes_the_instance_decides(rebuild, safe, data):
    changes = data.draw(st.permutations(rebuild + safe), label="changes")
    plan = data.draw(st.permutations(steps_of(changes)), label="steps in some order")
    expected = Verdict.REBUILD if rebuild else Verdict.SAFE
    assert verdicts(plan, []) == {expected}


@settings(max_examples=100, deadline=None)
@given(safe=st.lists(safe_changes, max_size=10), data=st.data())
def test_protection_error_on_the_instance_is_a_rebuild_in_any_safe_plan(safe, data):
    error = replace_protected_message(urn(INSTANCE, "raxx-tickets"))
    plan = data.draw(st.permutations(steps_of(safe)))
    assert verdicts(plan, [error]) == {Verdict.REBUILD}


# What a replacement of each type means, and what protection on it means, written out.
REPLACE_VERDICT = {
    INSTANCE: Verdict.REBUILD,
    **{t: Verdict.SAFE for t in (PORTS, ATTACHMENT, REMOTE, LOCAL, *INTERNAL)},
    **{t: Verdict.FORBIDDEN for t in (*MUST_SURVIVE, UNKNOWN)},
}
PROTECTED_VERDICT = {t: Verdict.REBUILD if t == INSTANCE else Verdict.FORBIDDEN for t in EVERY_TYPE}


@settings(max_examples=100, deadline=None)
@given(
    protected=st.sampled_from(EVERY_TYPE),
    cause=st.sampled_from(EVERY_TYPE),
    safe=st.lists(safe_changes, max_size=6),
)
def test_a_dependents_protection_error_judges_both_resources(protected, cause, safe):
    """`unable to replace resource A as part of replacing B`: the worse of A and B decides."""
    a, b = urn(protected, "protected"), urn(cause, "cause")
    message = replace_dependent_protected_message(a, b)
    expected = max(PROTECTED_VERDICT[protected], REPLACE_VERDICT[cause])
    assert verdicts(steps_of(safe), [message]) == {expected}


@settings(max_examples=50, deadline=None)
@given(
    changes=st.lists(any_change, max_size=8), errors=st.lists(any_error, max_size=2), data=st.data()
)
def test_a_log_cut_anywhere_before_its_summary_is_unreadable(changes, errors, data):
    lines = as_event_log(steps_of(changes), errors).splitlines()
    summary = next(i for i, line in enumerate(lines) if "summaryEvent" in line)
    keep = data.draw(st.integers(0, summary), label="lines kept")
    with pytest.raises(guard.UnreadablePlan):
        guard.read_plan("\n".join(lines[:keep]))
