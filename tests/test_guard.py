"""The plan guard's rules, on hand-made plans in both forms the engine writes.

The builders below write the exact shapes of Pulumi v3.274's output (pkg/backend/display/json.go
PreviewDigest for `preview --json`, sdk/go/common/apitype EngineEvent for event logs), including
the engine's message texts (pkg/resource/deploy/step_generator.go, step.go) and the colour markup
the event log keeps. The real engine's own output is tested in test_guard_engine_fixtures.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest

from operations import exitcodes, guard
from operations.guard import KNOWN_TYPES, Role, Step, Verdict

STACK_URN = "urn:pulumi:prod::raxx-freescout::pulumi:pulumi:Stack::raxx-freescout-prod"
INSTANCE = "aws:lightsail/instance:Instance"
PORTS = "aws:lightsail/instancePublicPorts:InstancePublicPorts"
ATTACHMENT = "aws:lightsail/staticIpAttachment:StaticIpAttachment"
STATIC_IP = "aws:lightsail/staticIp:StaticIp"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
DNS_OLD = "cloudflare:index/record:Record"
PARAMETER = "aws:ssm/parameter:Parameter"
PASSWORD = "random:index/randomPassword:RandomPassword"
REMOTE = "command:remote:Command"
LOCAL = "command:local:Command"
PROVIDER = "pulumi:providers:aws"
COMPONENT = "raxx:freescout:Host"
UNKNOWN = "aws:s3/bucket:Bucket"

MUST_SURVIVE = [STATIC_IP, DNS, DNS_OLD, PARAMETER, PASSWORD]


def urn(type_token: str, name: str, parent: str | None = COMPONENT) -> str:
    """A URN as the engine writes it: the parent chain's types joined by `$` (stack excluded)."""
    if type_token == "pulumi:pulumi:Stack":
        return STACK_URN
    qualified = f"{parent}${type_token}" if parent and parent != type_token else type_token
    return f"urn:pulumi:prod::raxx-freescout::{qualified}::{name}"


INSTANCE_URN = urn(INSTANCE, "raxx-tickets")


def replace_protected_message(target: str) -> str:
    """The engine's error for replacing a protected resource (step_generator.go)."""
    return (
        f'unable to replace resource "{target}"\n'
        "as it is currently marked for protection. To unprotect the resource, "
        "remove the `protect` flag from the resource in your Pulumi "
        "program and run `pulumi up`"
    )


def replace_dependent_protected_message(target: str, because_of: str) -> str:
    """The engine's error for a protected dependent of a delete-before-replace."""
    return (
        f'unable to replace resource "{target}" as part of replacing "{because_of}" '
        "as it is currently marked for protection. To unprotect the resource, "
        "remove the `protect` flag from the resource in your Pulumi "
        "program and run `pulumi up`, or use the command:\n"
        f"`pulumi state unprotect '{target}'`"
    )


def delete_protected_message(target: str) -> str:
    """The engine's error for a plain delete of a protected resource (step.go)."""
    return (
        f'resource "{target}" cannot be deleted\n'
        "because it is protected. To unprotect the resource, "
        "either remove the `protect` flag from the resource in your Pulumi "
        "program and run `pulumi up`, or use the command:\n"
        f"`pulumi state unprotect '{target}'`"
    )


def old_delete_protected_message(target: str) -> str:
    """The wording of older engines for the same error."""
    return f'unable to delete resource "{target}"\nas it is currently marked for protection.'


REMOVED_WITH_REPLACE = "removed-with-replace"
"""A hand-made plan's op: a resource deleted with no replacement of its own (see engine_ops)."""


@dataclass(frozen=True)
class Change:
    """One logical change in a hand-made plan; `replace` expands to its steps in event logs."""

    type_token: str
    name: str
    op: str
    keys: tuple[str, ...] = ()
    delete_first: bool = False

    @property
    def urn(self) -> str:
        parent = None if self.type_token.startswith(("pulumi:", "raxx:")) else COMPONENT
        return urn(self.type_token, self.name, parent)

    def engine_ops(self) -> list[str]:
        if self.op == REMOVED_WITH_REPLACE:
            # Removed from the program while what it depends on is replaced delete-first: the
            # engine deletes it as part of that replacement, then drops it (step_generator.go).
            return ["delete-replaced", "remove-pending-replace"]
        if self.op != "replace":
            return [self.op]
        if self.delete_first:
            return ["delete-replaced", "replace", "create-replacement"]
        return ["create-replacement", "replace", "delete-replaced"]


def preview_json(
    changes: Sequence[Change],
    errors: Iterable[tuple[str, str]] = (),
    show_replacement_steps: bool = False,
) -> str:
    """What `pulumi preview --json` prints: the logical steps only, errors as diagnostics.

    With `show_replacement_steps` (the CLI flag), every step but `remove-pending-replace`, as
    the engine prints them (display.go shouldShow; the real output is in ports-removed fixtures).
    """
    stack = Change("pulumi:pulumi:Stack", "raxx-freescout-prod", "same")
    steps = []
    for change in [stack, *changes]:
        if show_replacement_steps:
            ops = [op for op in change.engine_ops() if op != "remove-pending-replace"]
        else:
            ops = [] if change.op == REMOVED_WITH_REPLACE else [change.op]
        for op in ops:
            step: dict = {"op": op, "urn": change.urn, "detailedDiff": None}
            if change.type_token != "pulumi:pulumi:Stack":
                step["provider"] = urn(PROVIDER, "default_7_51_1", None) + "::04da6b54"
            if change.keys:
                step["replaceReasons" if change.op == "replace" else "diffReasons"] = list(
                    change.keys
                )
            step["newState"] = {"urn": change.urn, "type": change.type_token, "custom": True}
            steps.append(step)
    digest: dict = {
        "config": {"aws:region": "us-east-1", "freescout:protect": "true"},
        "steps": steps,
        "duration": 1234000000,
        "changeSummary": dict(Counter(c.op for c in changes)),
    }
    diagnostics = [
        {"urn": about, "message": f"error: {message}\n", "severity": "error"}
        for about, message in errors
    ]
    if diagnostics:
        # The engine closes every failed run with this (deployment_executor.go).
        diagnostics.append({"message": "error: preview failed\n", "severity": "error"})
        digest["diagnostics"] = diagnostics
    return json.dumps(digest, indent=4)


def event_log(changes: Sequence[Change], errors: Iterable[tuple[str, str]] = ()) -> str:
    """An engine event log (JSON lines): prelude, pre and outputs events per step, diagnostics."""
    events: list[dict] = [{"preludeEvent": {"config": {"aws:region": "us-east-1"}}}]
    for change in changes:
        for op in change.engine_ops():
            meta = {
                "op": op,
                "urn": change.urn,
                "type": change.type_token,
                "old": None,
                "new": None,
                "provider": "",
                "detailedDiff": None,
            }
            if change.keys:
                meta["keys" if change.op == "replace" else "diffs"] = list(change.keys)
            if op == "replace":
                meta["logical"] = True
            events.append({"resourcePreEvent": {"metadata": meta, "planning": True}})
            events.append({"resOutputsEvent": {"metadata": meta, "planning": True}})
    errors = list(errors)
    if errors:
        errors.append(("", "preview failed"))  # the engine's closing summary
    for about, message in errors:
        events.append(
            {
                "diagnosticEvent": {
                    "urn": about,
                    "prefix": "<{%fg 1%}>error: <{%reset%}>",
                    "message": "<{%reset%}>" + message + "<{%reset%}>\n",
                    "color": "raw",
                    "severity": "error",
                }
            }
        )
    events.append(
        {
            "summaryEvent": {
                "maybeCorrupt": False,
                "durationSeconds": 1,
                "resourceChanges": dict(
                    Counter(c.op for c in changes if c.op != REMOVED_WITH_REPLACE)
                ),
                "PolicyPacks": {},
                "isPreview": True,
                "result": "failed" if errors else "succeeded",
            }
        }
    )
    events.append({"cancelEvent": {}})  # the engine closes every stream with it
    return "\n".join(
        json.dumps({"sequence": n, "timestamp": 1733240000 + n, **e}) for n, e in enumerate(events)
    )


def preview_json_with_replacement_steps(
    changes: Sequence[Change], errors: Iterable[tuple[str, str]] = ()
) -> str:
    return preview_json(changes, errors, show_replacement_steps=True)


FORMATS = {"preview": preview_json, "events": event_log}
# The forms that show every step of a replacement (plain `preview --json` shows only `replace`).
FULL_FORMATS = {"preview-steps": preview_json_with_replacement_steps, "events": event_log}


def verdict_of(fmt: str, changes: Sequence[Change], errors: Iterable[tuple[str, str]] = ()):
    text = {**FORMATS, **FULL_FORMATS}[fmt](changes, errors)
    return guard.judge_plan(guard.read_plan(text))


def the_rest() -> list[Change]:
    """A rebuild's usual company: ports, attachment and provisioning replaced with the instance."""
    return [
        Change(PORTS, "raxx-tickets-ports", "replace", ("instanceName",)),
        Change(ATTACHMENT, "raxx-tickets-ip-attachment", "replace", ("instanceName",)),
        Change(REMOTE, "raxx-tickets-cloud-init", "replace", ("triggers",)),
        Change(LOCAL, "raxx-tickets-known-host", "replace", ("triggers",)),
        Change(COMPONENT, "raxx-tickets", "same"),
        Change(STATIC_IP, "raxx-tickets-ip", "same"),
        Change(DNS, "tickets", "same"),
        Change(PARAMETER, "db-password", "same"),
        Change(PASSWORD, "db-password", "same"),
        Change(PROVIDER, "default_7_51_1", "same"),
    ]


# ---------------------------------------------------------------- the rules, both formats

both_formats = pytest.mark.parametrize("fmt", sorted(FORMATS))


@both_formats
@pytest.mark.parametrize("type_token", MUST_SURVIVE)
@pytest.mark.parametrize("op", ["replace", "delete"])
def test_delete_or_replace_of_what_must_survive_is_forbidden(fmt, type_token, op):
    change = Change(type_token, "keep-me", op, ("name",) if op == "replace" else ())
    report = verdict_of(fmt, [*the_rest(), change])
    assert report.verdict is Verdict.FORBIDDEN, f"{change.urn} {op} must be forbidden"
    assert change.urn in {j.step.urn for j in report.offending}


@both_formats
@pytest.mark.parametrize("delete_first", [False, True])
def test_replacing_the_instance_needs_the_rebuild(fmt, delete_first):
    instance = Change(INSTANCE, "raxx-tickets", "replace", ("userData",), delete_first)
    report = verdict_of(fmt, [instance, *the_rest()])
    assert report.verdict is Verdict.REBUILD
    assert {j.step.urn for j in report.offending} == {INSTANCE_URN}
    assert "forced by: userData" in guard.render(report)
    assert "forced by: userData" in guard.render(report, "markdown")


@both_formats
@pytest.mark.parametrize("type_token", [INSTANCE, PORTS, ATTACHMENT])
def test_plain_delete_of_the_instance_or_what_follows_it_is_forbidden(fmt, type_token):
    change = Change(type_token, "raxx-tickets", "delete")
    report = verdict_of(fmt, [change])
    assert report.verdict is Verdict.FORBIDDEN, change.urn
    assert "plain delete" in report.offending[0].reason


@both_formats
@pytest.mark.parametrize("op", ["replace", "delete"])
def test_unknown_type_fails_closed(fmt, op):
    change = Change(UNKNOWN, "attachments", op)
    report = verdict_of(fmt, [change])
    assert report.verdict is Verdict.FORBIDDEN
    assert report.offending[0].role is None
    assert UNKNOWN in report.offending[0].reason


@both_formats
@pytest.mark.parametrize("op", ["create", "update", "same", "read", "refresh", "import"])
def test_unknown_type_that_is_kept_is_safe(fmt, op):
    assert verdict_of(fmt, [Change(UNKNOWN, "attachments", op)]).verdict is Verdict.SAFE


@both_formats
@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(
            [Change(PORTS, "p", "replace"), Change(ATTACHMENT, "a", "replace")], id="ports"
        ),
        pytest.param([Change(REMOTE, "modules", "replace", ("triggers",))], id="provisioning"),
        pytest.param([Change(REMOTE, "old-module", "delete")], id="provisioning-delete"),
        pytest.param([Change(LOCAL, "known-host", "delete")], id="local-delete"),
        pytest.param([Change(INSTANCE, "raxx-tickets", "update", ("tags",))], id="update"),
        pytest.param([Change(PARAMETER, "db-password", "update", ("value",))], id="rotate"),
        pytest.param([Change(STATIC_IP, "ip", "create"), Change(DNS, "d", "create")], id="create"),
        pytest.param([Change(DNS, "tickets", "update", ("content",))], id="dns-update"),
        pytest.param(
            [Change(PROVIDER, "default_7_51_1", "replace"), Change(PROVIDER, "old", "delete")],
            id="provider",
        ),
        pytest.param([Change("pulumi:pulumi:Stack", "s", "update")], id="stack"),
        pytest.param(
            [Change(COMPONENT, "raxx-tickets", "replace"), Change(COMPONENT, "x", "delete")],
            id="component",
        ),
        pytest.param([], id="empty"),
    ],
)
def test_safe_plans(fmt, changes):
    report = verdict_of(fmt, changes)
    assert report.verdict is Verdict.SAFE, [(j.step.urn, j.reason) for j in report.offending]
    assert report.offending == ()


@both_formats
def test_forbidden_wins_over_rebuild(fmt):
    changes = [
        Change(INSTANCE, "raxx-tickets", "replace", ("blueprintId",)),
        *the_rest(),
        Change(STATIC_IP, "raxx-tickets-ip", "replace", ("name",)),
    ]
    report = verdict_of(fmt, changes)
    assert report.verdict is Verdict.FORBIDDEN
    assert [j.verdict for j in report.offending][0] is Verdict.FORBIDDEN  # worst first
    assert INSTANCE_URN in {j.step.urn for j in report.offending}


# ---------------------------------------------------------------- the engine's errors


@both_formats
def test_protection_error_on_the_instance_is_a_rebuild_not_a_crash(fmt):
    # A preview with protect on: the engine reports the replace steps and the error.
    changes = [Change(INSTANCE, "raxx-tickets", "replace", ("userData",)), *the_rest()]
    errors = [(INSTANCE_URN, replace_protected_message(INSTANCE_URN))]
    report = verdict_of(fmt, changes, errors)
    assert report.verdict is Verdict.REBUILD
    assert len(report.errors) == 2  # the protection error and the engine's "preview failed"
    assert "marked for protection" in report.errors[0]
    assert report.errors[1].endswith("preview failed")
    assert not any("<{%" in e for e in report.errors)  # colour markup is stripped


@both_formats
def test_protection_error_alone_on_the_instance_is_a_rebuild(fmt):
    report = verdict_of(fmt, [], [(INSTANCE_URN, replace_protected_message(INSTANCE_URN))])
    assert report.verdict is Verdict.REBUILD
    assert report.offending[0].step.urn == INSTANCE_URN
    assert report.offending[0].role is Role.INSTANCE


@both_formats
@pytest.mark.parametrize("type_token", [STATIC_IP, DNS, PARAMETER, PORTS, UNKNOWN])
def test_protection_error_on_anything_else_is_forbidden(fmt, type_token):
    target = urn(type_token, "x")
    report = verdict_of(fmt, [], [(target, replace_protected_message(target))])
    assert report.verdict is Verdict.FORBIDDEN
    assert report.offending[0].step.urn == target


@both_formats
def test_dependent_protection_error_names_the_protected_resource(fmt):
    # The diagnostic is filed under the resource being replaced; the protected one is in the text.
    ip = urn(STATIC_IP, "raxx-tickets-ip")
    message = replace_dependent_protected_message(ip, INSTANCE_URN)
    report = verdict_of(fmt, [], [(INSTANCE_URN, message)])
    assert report.verdict is Verdict.FORBIDDEN
    assert report.offending[0].step.urn == ip
    # The instance's replacement that forces it is judged too.
    assert {(j.step.urn, j.verdict) for j in report.offending} == {
        (ip, Verdict.FORBIDDEN),
        (INSTANCE_URN, Verdict.REBUILD),
    }


@both_formats
@pytest.mark.parametrize(
    "cause, expected",
    [
        pytest.param(STATIC_IP, Verdict.FORBIDDEN, id="static-ip"),
        pytest.param(DNS, Verdict.FORBIDDEN, id="dns"),
        pytest.param(PARAMETER, Verdict.FORBIDDEN, id="parameter"),
        pytest.param(UNKNOWN, Verdict.FORBIDDEN, id="unknown"),
        pytest.param(PORTS, Verdict.REBUILD, id="ports"),
        pytest.param(REMOTE, Verdict.REBUILD, id="provisioning"),
        pytest.param(PROVIDER, Verdict.REBUILD, id="provider"),
    ],
)
def test_protected_instance_replaced_as_part_of_replacing_another_judges_both(fmt, cause, expected):
    """`unable to replace resource A as part of replacing B`: B's replacement is the change."""
    because = urn(cause, "raxx-tickets-ip", None if cause == PROVIDER else COMPONENT)
    # The engine's exact text (step_generator.go), filed under the resource being replaced.
    message = replace_dependent_protected_message(INSTANCE_URN, because)
    report = verdict_of(fmt, [], [(because, message)])
    assert report.verdict is expected, guard.render(report)
    judged = {j.step.urn: j.verdict for j in report.judgements if j.step.op == guard.ERROR_OP}
    assert judged[INSTANCE_URN] is Verdict.REBUILD
    assert because in judged  # named, whatever its verdict
    assert because in guard.render(report) or judged[because] is Verdict.SAFE


@both_formats
@pytest.mark.parametrize("wording", [delete_protected_message, old_delete_protected_message])
@pytest.mark.parametrize("type_token", [INSTANCE, STATIC_IP])
def test_delete_protection_error_is_forbidden(fmt, wording, type_token):
    # The engine raises it only for a delete outside a replacement (step.go: !s.replacing).
    target = urn(type_token, "x")
    report = verdict_of(fmt, [Change(type_token, "x", "delete")], [(target, wording(target))])
    assert report.verdict is Verdict.FORBIDDEN
    assert {j.step.urn for j in report.offending} == {target}


@both_formats
def test_any_other_engine_error_fails_closed(fmt):
    message = "Missing required configuration variable 'freescout:adminEmail'"
    report = verdict_of(fmt, [Change(INSTANCE, "raxx-tickets", "update")], [(STACK_URN, message)])
    assert report.verdict is Verdict.FORBIDDEN
    assert "preview failed" in report.offending[0].reason
    assert "adminEmail" in report.offending[0].reason


def test_the_engines_closing_summary_alone_fails_closed():
    for text in ("preview failed", "error: update failed\n", "preview canceled"):
        report = guard.judge([], [text])
        assert report.verdict is Verdict.FORBIDDEN, text
        assert "without a reason" in report.offending[0].reason
    # With the reason beside it, the summary adds nothing.
    message = replace_protected_message(INSTANCE_URN)
    report = guard.judge([], ["preview failed", message])
    assert report.verdict is Verdict.REBUILD
    assert len(report.offending) == 1


def test_joined_error_texts_are_all_judged():
    """A caller may join the engine's errors into one text: none of them may hide another."""
    ip = urn(STATIC_IP, "raxx-tickets-ip")
    instance = replace_protected_message(INSTANCE_URN)
    dependent = replace_dependent_protected_message(INSTANCE_URN, urn(UNKNOWN, "x"))
    for extra, expected, named in [
        ("", Verdict.REBUILD, {INSTANCE_URN}),
        ("preview failed", Verdict.REBUILD, {INSTANCE_URN}),
        (dependent, Verdict.FORBIDDEN, {INSTANCE_URN, urn(UNKNOWN, "x")}),
        (replace_protected_message(ip), Verdict.FORBIDDEN, {INSTANCE_URN, ip}),
        (delete_protected_message(ip), Verdict.FORBIDDEN, {INSTANCE_URN, ip}),
        ("error: could not load plugin aws", Verdict.FORBIDDEN, {INSTANCE_URN, ""}),
    ]:
        report = guard.judge([], ["\n".join(filter(None, [instance, extra]))])
        assert report.verdict is expected, extra
        assert {j.step.urn for j in report.offending} == named, extra


def test_warnings_and_info_are_not_errors():
    digest = json.loads(preview_json([]))
    digest["diagnostics"] = [
        {"message": "warning: deprecated\n", "severity": "warning"},
        {"message": "hello from the program\n", "severity": "info"},
        {"message": "stderr text\n", "severity": "info#err"},
    ]
    steps, errors, _ = guard.read_plan(json.dumps(digest))
    assert errors == []
    assert guard.judge(steps, errors).verdict is Verdict.SAFE


# ---------------------------------------------------------------- steps and ops


def test_every_engine_op_is_classified_deliberately():
    # pkg/resource/deploy/step.go StepOps of Pulumi v3.274.
    engine_ops = {
        "same", "create", "update", "delete", "replace", "create-replacement", "delete-replaced",
        "read", "read-replacement", "refresh", "discard", "discard-replaced",
        "remove-pending-replace", "import", "import-replacement", "diff", "extend-parameterize",
    }  # fmt: skip
    assert set(guard.OP_KINDS) == engine_ops


@pytest.mark.parametrize(
    "op, expected",
    [
        ("create-replacement", Verdict.REBUILD),
        ("read-replacement", Verdict.REBUILD),
        ("import-replacement", Verdict.REBUILD),
        # Alone (no create-replacement or replace of the URN) these are plain deletes.
        ("delete-replaced", Verdict.FORBIDDEN),
        ("remove-pending-replace", Verdict.FORBIDDEN),
        ("delete", Verdict.FORBIDDEN),
        ("discard", Verdict.SAFE),
        ("discard-replaced", Verdict.SAFE),
        ("refresh", Verdict.SAFE),
        ("some-future-op", Verdict.FORBIDDEN),
    ],
)
def test_instance_by_op(op, expected):
    assert guard.judge([Step(INSTANCE_URN, op)]).verdict is expected


@pytest.mark.parametrize(
    "op",
    ["create-replacement", "delete-replaced", "import-replacement", "remove-pending-replace"],
)
def test_replacement_steps_of_what_must_survive_are_forbidden(op):
    assert guard.judge([Step(urn(STATIC_IP, "ip"), op)]).verdict is Verdict.FORBIDDEN


def test_unknown_op_on_pulumis_own_resources_is_safe():
    step = Step(urn(PROVIDER, "default", None), "extend-parameterize")
    assert guard.judge([step]).verdict is Verdict.SAFE


def test_type_token_is_the_last_segment_of_the_urns_type():
    nested = "urn:pulumi:prod::p::raxx:freescout:Host$command:remote:Command::a::b"
    assert Step(nested, "create").type_token == REMOTE
    assert Step(STACK_URN, "same").type_token == "pulumi:pulumi:Stack"
    assert Step("not a urn", "create").type_token == ""


def test_known_types_and_roles_table():
    assert guard.role_of(INSTANCE) is Role.INSTANCE
    assert guard.role_of(DNS_OLD) is Role.DNS_RECORD
    assert guard.role_of("pulumi:providers:cloudflare") is Role.PULUMI_INTERNAL
    assert guard.role_of("raxx:freescout:Tickets") is Role.COMPONENT
    assert guard.role_of(UNKNOWN) is None
    # A caller's table replaces ours, but the engine's own resources stay internal.
    table = {"pulumi-python:dynamic/standin:Instance": Role.INSTANCE}
    assert guard.role_of("pulumi-python:dynamic/standin:Instance", table) is Role.INSTANCE
    assert guard.role_of(INSTANCE, table) is None
    assert guard.role_of("pulumi:providers:pulumi-python", table) is Role.PULUMI_INTERNAL
    assert guard.role_of("pulumi:pulumi:Stack", table) is Role.PULUMI_INTERNAL
    assert set(KNOWN_TYPES.values()) == set(Role)


def test_verdicts_are_the_exit_codes():
    assert Verdict.SAFE == exitcodes.OK
    assert Verdict.REBUILD == exitcodes.NEEDS_REBUILD
    assert Verdict.FORBIDDEN == exitcodes.FORBIDDEN


def test_event_log_keeps_keys_and_diffs_and_counts_each_step_once():
    changes = [
        Change(INSTANCE, "raxx-tickets", "replace", ("userData", "blueprintId")),
        Change(PARAMETER, "db-password", "update", ("value",)),
    ]
    steps, errors, _ = guard.read_plan(event_log(changes))
    assert errors == []
    assert Step(INSTANCE_URN, "replace", ("userData", "blueprintId")) in steps
    assert Step(urn(PARAMETER, "db-password"), "update", (), ("value",)) in steps
    report = guard.judge(steps)
    assert report.counts == {
        "create-replacement": 1, "replace": 1, "delete-replaced": 1, "update": 1
    }  # fmt: skip


def test_preview_json_reads_replace_reasons_and_diff_reasons():
    changes = [
        Change(INSTANCE, "raxx-tickets", "replace", ("userData",)),
        Change(PARAMETER, "db-password", "update", ("value",)),
    ]
    steps = guard.read_plan(preview_json(changes)).steps
    assert Step(INSTANCE_URN, "replace", ("userData",)) in steps
    assert Step(urn(PARAMETER, "db-password"), "update", (), ("value",)) in steps
    assert steps[0].urn == STACK_URN


def whole_log(*events: dict) -> str:
    """A finished preview's event log around the given events: prelude first, summary last."""
    framed = [
        {"preludeEvent": {"config": {}}},
        *events,
        {"summaryEvent": {"resourceChanges": {}, "isPreview": True, "result": "succeeded"}},
        {"cancelEvent": {}},
    ]
    return "\n".join(json.dumps({"sequence": n, "timestamp": 1, **e}) for n, e in enumerate(framed))


@pytest.mark.parametrize("after_refresh", [False, True], ids=["alone", "after-refresh"])
def test_an_outputs_event_without_its_pre_event_still_counts(after_refresh):
    """A delete seen only in an outputs event (a cut log, or `pulumi refresh`'s rewritten op)
    is judged like any delete: never dropped because a refresh of the URN came before."""
    ip = urn(STATIC_IP, "ip")
    meta = {"op": "delete", "urn": ip, "type": STATIC_IP, "provider": ""}
    refresh = [{"resourcePreEvent": {"metadata": {**meta, "op": "refresh"}}}]
    log = whole_log(*(refresh if after_refresh else []), {"resOutputsEvent": {"metadata": meta}})
    plan = guard.read_plan(log)
    assert Step(ip, "delete") in plan.steps
    delete = next(s for s in plan.steps if s.op == "delete")
    assert delete.outputs_only
    report = guard.judge_plan(plan)
    assert report.verdict is Verdict.FORBIDDEN
    assert "seen only in an outputs event" in guard.render(report)


def test_a_step_seen_in_both_events_counts_once_and_is_not_outputs_only():
    meta = {"op": "update", "urn": INSTANCE_URN, "type": INSTANCE, "diffs": ["tags"]}
    plan = guard.read_plan(
        whole_log({"resourcePreEvent": {"metadata": meta}}, {"resOutputsEvent": {"metadata": meta}})
    )
    assert plan.steps == [Step(INSTANCE_URN, "update", (), ("tags",))]
    assert not plan.steps[0].outputs_only


def test_engine_event_objects_from_the_automation_api():
    """The same judgement from pulumi.automation's EngineEvent objects (what on_event gets)."""
    from pulumi.automation import events as auto_events

    changes = [Change(INSTANCE, "raxx-tickets", "replace", ("userData",)), *the_rest()]
    errors = [(INSTANCE_URN, replace_protected_message(INSTANCE_URN))]
    objects = [
        auto_events.EngineEvent.from_json(json.loads(line))
        for line in event_log(changes, errors).splitlines()
    ]
    steps, messages = guard.steps_from_engine_events(objects)
    raw_steps, raw_messages, _ = guard.read_plan(event_log(changes, errors))
    assert steps == raw_steps
    assert messages == raw_messages
    assert guard.judge(steps, messages).verdict is Verdict.REBUILD
    assert all(isinstance(s.op, str) and not hasattr(s.op, "value") for s in steps)


def test_event_batch_and_list_forms():
    changes = [Change(STATIC_IP, "ip", "delete")]
    lines = [json.loads(line) for line in event_log(changes).splitlines()]
    for text in (json.dumps({"events": lines}), json.dumps(lines)):
        assert guard.judge_plan(guard.read_plan(text)).verdict is Verdict.FORBIDDEN
    # One event is never a whole log.
    with pytest.raises(guard.UnreadablePlan, match="did not finish"):
        guard.read_plan(json.dumps(lines[1]))


# ---------------------------------------------------------------- unreadable input


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("this is not json", "line 1 is not JSON"),
        ('{"sequence": 0, "timestamp": 1, "preludeEvent": {}}\nnot json', "line 2 is not JSON"),
        ('{"hello": "world"}\n{"a": 1}', "line 1 is JSON but not an engine event"),
        ('{"hello": "world"}', "neither"),
        ("[1, 2, 3]", "neither"),
        ("[]", "neither"),
        ("42", "neither"),
        ('{"steps": {"op": "create"}}', "must be lists"),
        ('{"steps": [{"op": "create"}]}', "step 0 has no"),
        ('{"steps": [{"op": 5, "urn": "u"}]}', "step 0 has no"),
        # A digest must be whole: a `steps` list, only the digest's own keys.
        ('{"steps": null}', "must be lists"),
        ('{"steps": {}, "diagnostics": []}', "must be lists"),
        ('{"steps": [], "diagnostics": null}', "must be lists"),
        ('{"duration": 1}', "has no `steps`"),
        ('{"diagnostics": [{"severity": "error", "message": "boom"}]}', "error: boom"),
        ('{"steps": [], "diagnostics": ["error: x"]}', "diagnostic 0 is not an object"),
        ('{"steps": [], "cancelEvent": {}}', "engine event keys (cancelEvent)"),
        ('{"steps": [], "surprise": 1}', "keys it does not have (surprise)"),
        ('{"steps": [], "duration": NaN}', "not JSON"),
        # Events must be whole events and a whole log.
        ('{"cancelEvent": {}}', "the preview did not finish"),
        ('[{"cancelEvent": {}}]', "the preview did not finish"),
        ('{"events": [], "more": 1}', "event batch"),
        ('{"preludeEvent": {}, "summaryEvent": {}}', "2 events in one object"),
        ('{"summaryEvent": {}, "steps": []}', "engine event keys (summaryEvent)"),
        ('{"summaryEvent": {}, "extra": []}', "keys that are not an engine event's (extra)"),
        ('{"summaryEvent": []}', "`summaryEvent` is not an object"),
        # Nesting the engine never writes, as one document and as a line.
        ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
        ('{"cancelEvent": {}}\n' + "[" * 200_000, "line 2: the JSON is nested too deeply"),
    ],
)
def test_unreadable_plans(text, says):
    with pytest.raises(guard.UnreadablePlan) as caught:
        guard.read_plan(text)
    assert says in caught.value.message
    assert "pulumi preview --json" in (caught.value.hint or "")
    assert caught.value.exit_code == exitcodes.USAGE


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _join(events: list[dict]) -> str:
    return "\n".join(json.dumps(e) for e in events)


def _static_ip_replace_log() -> list[dict]:
    return _lines(event_log([*the_rest(), Change(STATIC_IP, "x", "replace", ("name",))]))


@pytest.mark.parametrize("keep", [1, 5, 30, -2], ids=lambda k: f"first-{k}")
def test_a_log_cut_before_its_summary_is_unreadable(keep):
    """A preview's log always holds a summaryEvent: without it steps may be missing."""
    events = _static_ip_replace_log()
    cut = events[:keep]
    assert not any("summaryEvent" in e for e in cut)
    with pytest.raises(guard.UnreadablePlan, match="the preview did not finish"):
        guard.read_plan(_join(cut))


def test_a_canceled_preview_is_unreadable():
    events = _lines(event_log([Change(INSTANCE, "raxx-tickets", "update")]))
    summary = next(e for e in events if "summaryEvent" in e)
    summary["summaryEvent"]["result"] = "canceled"
    with pytest.raises(guard.UnreadablePlan, match="did not finish: its summary says `canceled`"):
        guard.read_plan(_join(events))


def test_a_log_missing_its_start_or_a_middle_line_is_unreadable():
    events = _static_ip_replace_log()
    with pytest.raises(guard.UnreadablePlan, match="does not begin with the engine's prelude"):
        guard.read_plan(_join(events[1:]))
    middle = next(i for i, e in enumerate(events) if "resourcePreEvent" in e and i > 20)
    with pytest.raises(guard.UnreadablePlan, match="skips from sequence"):
        guard.read_plan(_join(events[:middle] + events[middle + 1 :]))


@pytest.mark.parametrize("extra", ["cancelEvent", "progressEvent"])
def test_a_digest_hiding_an_event_key_is_unreadable(extra):
    """An object with both digest and event keys was never written by the engine."""
    digest = json.loads(preview_json([Change(STATIC_IP, "raxx-tickets-ip", "replace")]))
    digest[extra] = {}
    with pytest.raises(guard.UnreadablePlan, match=f"engine event keys \\({extra}\\)"):
        guard.read_plan(json.dumps(digest))


def test_an_empty_stack_preview_is_safe_only_when_well_formed():
    assert guard.judge_plan(guard.read_plan('{"steps": []}')).verdict is Verdict.SAFE
    assert guard.judge_plan(guard.read_plan('{"steps": [], "diagnostics": []}')).verdict == 0
    for text in ('{"steps": null}', "{}", '{"duration": 5}', '{"config": {}}'):
        with pytest.raises(guard.UnreadablePlan):
            guard.read_plan(text)


@pytest.mark.parametrize(
    "message",
    ["", "\n", "error: ", "<{%reset%}><{%reset%}>\n", None],
    ids=["empty", "newline", "prefix-only", "markup-only", "null"],
)
def test_an_error_with_an_empty_message_still_fails_closed(message):
    digest: dict = {"steps": [], "diagnostics": [{"severity": "error"}]}
    if message is not None:
        digest["diagnostics"][0]["message"] = message
    diagnostic = {"severity": "error", "color": "raw"}
    if message is not None:
        diagnostic["message"] = message
    for text in (json.dumps(digest), whole_log({"diagnosticEvent": diagnostic})):
        report = guard.judge_plan(guard.read_plan(text))
        assert report.verdict is Verdict.FORBIDDEN, text
        assert "empty message" in report.offending[0].reason
    # The engine's own summary line alone keeps its own reason.
    assert "without a reason" in guard.judge([], ["preview failed"]).offending[0].reason


def test_the_attackers_samples_in_both_forms_never_pass():
    """The crafted inputs that once judged SAFE (exit 0): each is now unreadable or forbidden."""
    ip = urn(STATIC_IP, "raxx-tickets-ip")
    samples = [
        json.dumps({"steps": [{"op": "replace", "urn": ip}], "cancelEvent": {}}),
        json.dumps({"steps": [{"op": "delete", "urn": ip}], "progressEvent": {}}),
        json.dumps({"steps": {}, "diagnostics": []}),
        json.dumps({"steps": None}),
        json.dumps({"duration": 1}),
        json.dumps({"cancelEvent": {}}),
        _join(
            [
                {"preludeEvent": {"config": {}}},
                {"resourcePreEvent": {"metadata": {"urn": INSTANCE_URN, "op": "same"}}},
            ]
        ),
        json.dumps({"steps": [], "diagnostics": [{"severity": "error", "message": ""}]}),
        _join(
            [
                {"resourcePreEvent": {"metadata": {"urn": ip, "op": "refresh"}}},
                {"resOutputsEvent": {"metadata": {"urn": ip, "op": "delete"}}},
            ]
        ),
    ]
    for text in samples:
        try:
            verdict = guard.judge_plan(guard.read_plan(text)).verdict
        except guard.UnreadablePlan:
            continue
        assert verdict is Verdict.FORBIDDEN, text


# ---------------------------------------------------------------- a delete with no replacement

full_formats = pytest.mark.parametrize("fmt", sorted(FULL_FORMATS))


def _instance_replaced_without(removed: Change) -> list[Change]:
    """The rebuild's plan, delete-first as the engine does it, with `removed` left out."""
    instance = Change(INSTANCE, "raxx-tickets", "replace", ("userData",), delete_first=True)
    rest = [c for c in the_rest() if c.type_token != removed.type_token]
    return [instance, *rest, removed]


@full_formats
@pytest.mark.parametrize("type_token", [PORTS, ATTACHMENT])
def test_what_follows_the_instance_removed_during_its_replacement_is_a_plain_delete(
    fmt, type_token
):
    """The engine's real sequence (see the ports-removed engine fixture): `delete-replaced`,
    then `remove-pending-replace`, and no `create-replacement` or `replace` of that URN."""
    removed = Change(type_token, "raxx-tickets-ports", REMOVED_WITH_REPLACE)
    report = verdict_of(fmt, _instance_replaced_without(removed))
    assert report.verdict is Verdict.FORBIDDEN, guard.render(report)
    forbidden = {j.step.urn for j in report.offending if j.verdict is Verdict.FORBIDDEN}
    assert forbidden == {removed.urn}
    assert all("plain delete" in j.reason for j in report.offending if j.step.urn == removed.urn)
    # The instance's own replacement is still judged a rebuild beside it.
    assert any(j.verdict is Verdict.REBUILD for j in report.offending if j.step.urn == INSTANCE_URN)


@full_formats
@pytest.mark.parametrize(
    "type_token, expected",
    [
        pytest.param(INSTANCE, Verdict.FORBIDDEN, id="instance"),
        pytest.param(PORTS, Verdict.FORBIDDEN, id="ports"),
        pytest.param(ATTACHMENT, Verdict.FORBIDDEN, id="attachment"),
        pytest.param(STATIC_IP, Verdict.FORBIDDEN, id="static-ip"),
        pytest.param(DNS, Verdict.FORBIDDEN, id="dns"),
        pytest.param(PARAMETER, Verdict.FORBIDDEN, id="parameter"),
        pytest.param(PASSWORD, Verdict.FORBIDDEN, id="password"),
        pytest.param(UNKNOWN, Verdict.FORBIDDEN, id="unknown"),
        pytest.param(REMOTE, Verdict.SAFE, id="provisioning"),
        pytest.param(LOCAL, Verdict.SAFE, id="local-command"),
        pytest.param(PROVIDER, Verdict.SAFE, id="provider"),
    ],
)
def test_a_replacement_delete_alone_is_judged_by_the_plain_delete_rules(fmt, type_token, expected):
    removed = Change(type_token, "gone", REMOVED_WITH_REPLACE)
    report = verdict_of(fmt, [removed])
    assert report.verdict is expected, guard.render(report)


@pytest.mark.parametrize(
    "ops, expected",
    [
        (["delete-replaced"], Verdict.FORBIDDEN),
        (["remove-pending-replace"], Verdict.FORBIDDEN),
        (["delete-replaced", "remove-pending-replace"], Verdict.FORBIDDEN),
        (["delete-replaced", "read-replacement"], Verdict.FORBIDDEN),
        (["delete-replaced", "discard-replaced"], Verdict.FORBIDDEN),
        # Something takes its place: a replacement.
        (["create-replacement", "replace", "delete-replaced"], Verdict.SAFE),
        (["delete-replaced", "replace", "create-replacement"], Verdict.SAFE),
        (["replace", "create-replacement"], Verdict.SAFE),  # resumed: the old one already gone
        (["delete-replaced", "create"], Verdict.SAFE),
        (["replace"], Verdict.SAFE),
        # A plain `delete` is one whatever else the URN shows.
        (["delete", "create-replacement"], Verdict.FORBIDDEN),
    ],
)
def test_the_steps_of_one_urn_are_judged_together(ops, expected):
    ports = urn(PORTS, "raxx-tickets-ports")
    for order in (ops, ops[::-1]):
        report = guard.judge([Step(ports, op) for op in order])
        assert report.verdict is expected, order
    # Another URN's replacement never covers this one's delete.
    other = urn(PORTS, "other-ports")
    plan = [Step(other, "create-replacement"), Step(other, "replace"), Step(ports, ops[0])]
    alone = guard.judge([Step(ports, ops[0])]).verdict
    assert guard.judge(plan).verdict is alone


def test_plain_preview_json_cannot_show_such_a_delete_and_says_so():
    """Plain `preview --json` omits replacement steps (display.go): the removed ports are not in
    it at all. The guard cannot judge what is not there; it says how to get the whole plan."""
    removed = Change(PORTS, "raxx-tickets-ports", REMOVED_WITH_REPLACE)
    plan = guard.read_plan(preview_json(_instance_replaced_without(removed)))
    assert removed.urn not in {s.urn for s in plan.steps}
    assert plan.notes == (guard.HIDDEN_STEPS_NOTE,)
    report = guard.judge_plan(plan)
    assert report.verdict is Verdict.REBUILD  # the rebuild cycle re-judges the full event stream
    for fmt in ("text", "markdown"):
        assert "--show-replacement-steps" in guard.render(report, fmt)
    full = guard.read_plan(preview_json_with_replacement_steps(_instance_replaced_without(removed)))
    assert full.notes == ()
    assert guard.read_plan(preview_json([Change(INSTANCE, "x", "update")])).notes == ()


# ---------------------------------------------------------------- rendering


def _mixed_report():
    changes = [
        Change(INSTANCE, "raxx-tickets", "replace", ("userData",)),
        *the_rest(),
        Change(DNS, "tickets|www", "delete"),
        Change(UNKNOWN, "attachments", "replace"),
    ]
    return guard.judge_plan(guard.read_plan(preview_json(changes))), changes


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_render_names_each_offending_urn_with_the_reason(fmt):
    report, _ = _mixed_report()
    out = guard.render(report, fmt)
    assert "FORBIDDEN" in out
    dns = urn(DNS, "tickets|www")
    shown = dns.replace("|", "\\|") if fmt == "markdown" else dns
    for expected in (INSTANCE_URN, shown, urn(UNKNOWN, "attachments")):
        assert expected in out, f"{expected} missing from\n{out}"
    assert "must survive" in out and "fails closed" in out and "rebuild cycle" in out
    # Safe steps are counted, not listed.
    assert urn(PORTS, "raxx-tickets-ports") not in out
    assert "replace 6" in out


def test_render_lists_a_replacement_once_with_its_steps():
    changes = [Change(INSTANCE, "raxx-tickets", "replace", ("userData",))]
    errors = [(INSTANCE_URN, replace_protected_message(INSTANCE_URN))]
    out = guard.render(guard.judge_plan(guard.read_plan(event_log(changes, errors))))
    assert out.count(INSTANCE_URN) == 1, out
    assert "create-replacement, replace, delete-replaced, engine-error" in out
    assert "protected and must be replaced" in out


def test_markdown_is_a_table():
    report, _ = _mixed_report()
    out = guard.render(report, "markdown")
    assert out.startswith("### Plan guard: **FORBIDDEN** (exit 20)")
    assert "| verdict | resource | steps | why |" in out
    assert out.count("\n| ") == 1 + len({j.step.urn for j in report.offending})


def test_render_safe_and_unknown_format():
    report = guard.judge([])
    assert guard.render(report).startswith("plan guard: SAFE (exit 0)")
    assert "no steps" in guard.render(report)
    with pytest.raises(guard.UsageError):
        guard.render(report, "html")
