"""The plan guard: judge a Pulumi plan as safe, needing the rebuild cycle, or forbidden.

It reads the two forms the engine writes a plan in -- the digest of `pulumi preview --json` and an
engine event log (JSON lines of apitype.EngineEvent, as `--event-log` and the Automation API write
them) -- or the Automation API's EngineEvent objects, and classifies every step by the role of its
resource (from the last `$`-segment of the URN's type) and its operation. The verdict is the worst
step's: forbidden over rebuild over safe. Unknown types and unknown operations fail closed.

The engine facts this relies on (Pulumi v3.274, pkg/resource/deploy and sdk/go/common/apitype):
- a replacement is the steps `create-replacement`, `replace` (the logical step), `delete-replaced`,
  in that order or delete-first; `preview --json` shows only `replace` unless asked for more;
- a preview of a protected resource that must be replaced fails with the diagnostic
  `unable to replace resource "<urn>"\nas it is currently marked for protection...` (or
  `unable to replace resource "<urn>" as part of replacing "<urn2>" ...` for a dependent);
- a plain delete of a protected resource fails with `resource "<urn>" cannot be deleted\nbecause
  it is protected...` (older engines: `unable to delete resource "<urn>"\nas it is currently
  marked for protection...`); the engine never raises it for the delete of a replacement;
- every failed run ends with the diagnostic `preview failed` (or `update failed`) after the error
  that says why (deploy/deployment_executor.go);
- a resource removed from the program while a resource it depends on is replaced delete-first is
  deleted as `delete-replaced` (then `remove-pending-replace`) with NO `create-replacement` or
  `replace` of its URN (step_generator.go): that is a plain delete, so the guard judges the steps
  of each URN together, never a `delete-replaced` alone;
- `preview --json` leaves out the non-logical replacement steps (`create-replacement`,
  `delete-replaced`, `remove-pending-replace`) unless run with `--show-replacement-steps`
  (display.go shouldShow), so such a delete is invisible there: the event log shows every step;
- an event log begins with a `preludeEvent` and holds a `summaryEvent` once the run finished
  (result `succeeded`, `failed` or `canceled`); the stream is closed by a `cancelEvent` whether or
  not the run was canceled (engine/update.go), so only the summary tells a finished log.
"""

from __future__ import annotations

import enum
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from operations import exitcodes
from operations.errors import UsageError

PREVIEW_HINT = (
    "run `pulumi preview --json > plan.json` (or `pulumi preview --event-log plan.jsonl`) "
    "and pass that file"
)


class UnreadablePlan(UsageError):
    """The input is neither `pulumi preview --json` output nor an engine event log."""


class Verdict(enum.IntEnum):
    """The guard's verdict; the values are the exit codes of scripts/pr_check.py."""

    SAFE = exitcodes.OK
    REBUILD = exitcodes.NEEDS_REBUILD
    FORBIDDEN = exitcodes.FORBIDDEN


class Role(enum.Enum):
    """What a resource is to this stack, which decides what may happen to it."""

    INSTANCE = "instance"
    PORTS = "public ports"
    ATTACHMENT = "static IP attachment"
    STATIC_IP = "static IP"
    DNS_RECORD = "DNS record"
    SECRET_PARAMETER = "SSM parameter"
    GENERATED_PASSWORD = "generated password"
    PROVISIONING = "provisioning command"
    PULUMI_INTERNAL = "Pulumi's own resource"
    COMPONENT = "component"


# Keys ending in ":" are prefixes (a whole package or module of types).
KNOWN_TYPES: Mapping[str, Role] = MappingProxyType(
    {
        "aws:lightsail/instance:Instance": Role.INSTANCE,
        "aws:lightsail/instancePublicPorts:InstancePublicPorts": Role.PORTS,
        "aws:lightsail/staticIpAttachment:StaticIpAttachment": Role.ATTACHMENT,
        "aws:lightsail/staticIp:StaticIp": Role.STATIC_IP,
        "cloudflare:index/dnsRecord:DnsRecord": Role.DNS_RECORD,
        "cloudflare:index/record:Record": Role.DNS_RECORD,
        "aws:ssm/parameter:Parameter": Role.SECRET_PARAMETER,
        "random:index/randomPassword:RandomPassword": Role.GENERATED_PASSWORD,
        "command:remote:Command": Role.PROVISIONING,
        "command:local:Command": Role.PROVISIONING,
        "pulumi:pulumi:Stack": Role.PULUMI_INTERNAL,
        "pulumi:providers:": Role.PULUMI_INTERNAL,
        "raxx:freescout:": Role.COMPONENT,
    }
)

# Pulumi's own resources own no cloud object whatever table the caller passes.
_ENGINE_TYPES: Mapping[str, Role] = MappingProxyType(
    {"pulumi:pulumi:Stack": Role.PULUMI_INTERNAL, "pulumi:providers:": Role.PULUMI_INTERNAL}
)


class _Kind(enum.Enum):
    """What an operation does to the cloud object behind a resource."""

    KEEP = "keeps the cloud object"
    REPLACE = "replaces the cloud object"
    DELETE = "deletes the cloud object"
    UNKNOWN = "is an operation the guard does not know"


# Every StepOp of the engine (pkg/resource/deploy/step.go StepOps), classified deliberately.
OP_KINDS: Mapping[str, _Kind] = MappingProxyType(
    {
        "same": _Kind.KEEP,
        "create": _Kind.KEEP,
        "update": _Kind.KEEP,  # in place
        "read": _Kind.KEEP,  # reads an object Pulumi does not manage
        "refresh": _Kind.KEEP,  # reads the cloud into the state
        "import": _Kind.KEEP,  # adopts an existing object
        "diff": _Kind.KEEP,  # compares against an imported object
        "extend-parameterize": _Kind.KEEP,  # provider parameterization
        # The delete step of a read (external) resource: only the state forgets it; the engine
        # never calls the provider's Delete for an external resource.
        "discard": _Kind.KEEP,
        "discard-replaced": _Kind.KEEP,
        "delete": _Kind.DELETE,
        # deploy.IsReplacementStep: all parts of a replacement of a managed object.
        "replace": _Kind.REPLACE,
        "create-replacement": _Kind.REPLACE,
        "delete-replaced": _Kind.REPLACE,
        "read-replacement": _Kind.REPLACE,  # relinquishes a managed object: the old one is deleted
        "import-replacement": _Kind.REPLACE,  # an imported object takes the old one's place
        "remove-pending-replace": _Kind.REPLACE,  # the old object was already deleted by a replace
    }
)

ERROR_OP = "engine-error"
"""The op of the pseudo-step a judgement of an engine error carries (never an engine op)."""


@dataclass(frozen=True)
class Step:
    """One step of a plan: the URN, the operation, and why (keys: replace, diffs: update)."""

    urn: str
    op: str
    keys: tuple[str, ...] = ()
    diffs: tuple[str, ...] = ()
    # True when only a resOutputsEvent/resOpFailedEvent showed it (its resourcePreEvent missing).
    outputs_only: bool = field(default=False, compare=False)

    @property
    def type_token(self) -> str:
        """The resource's own type: the last `$`-segment of the URN's qualified type."""
        return type_token_of(self.urn)


@dataclass(frozen=True)
class Judgement:
    step: Step
    role: Role | None
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Report:
    verdict: Verdict
    judgements: tuple[Judgement, ...]
    errors: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the input cannot show (rendered under the verdict)

    @property
    def offending(self) -> tuple[Judgement, ...]:
        """The judgements that are not safe, worst first."""
        return tuple(sorted((j for j in self.judgements if j.verdict), key=lambda j: -j.verdict))


# ---------------------------------------------------------------- classification


def type_token_of(urn: str) -> str:
    """`urn:pulumi:stack::project::parent$child::name` -> `child` (names may contain `::`)."""
    parts = urn.split("::", 3)
    if len(parts) < 3:
        return ""
    return parts[2].rsplit("$", 1)[-1]


def role_of(type_token: str, roles: Mapping[str, Role] = KNOWN_TYPES) -> Role | None:
    """The role of a type token: an exact entry first, then the longest prefix entry."""
    for table in (roles, _ENGINE_TYPES):
        if type_token in table:
            return table[type_token]
        prefixes = [k for k in table if k.endswith(":") and type_token.startswith(k)]
        if prefixes:
            return table[max(prefixes, key=len)]
    return None


_MUST_SURVIVE = {Role.STATIC_IP, Role.DNS_RECORD, Role.SECRET_PARAMETER, Role.GENERATED_PASSWORD}
_FOLLOWS_INSTANCE = {Role.PORTS, Role.ATTACHMENT}


# The ops that delete a URN's old object, and those that put a new object in its place.
DELETING_OPS = frozenset({"delete", "delete-replaced", "remove-pending-replace"})
REPLACING_OPS = frozenset({"create-replacement", "replace", "create"})


def plain_deletes(steps: Iterable[Step]) -> frozenset[str]:
    """The URNs whose steps delete the old object and put nothing in its place.

    The engine deletes a resource that left the program while something it depends on is
    replaced delete-first as `delete-replaced` (and `remove-pending-replace`), with no
    `create-replacement` or `replace` of its own: a replacement op that is a plain delete.
    """
    ops: dict[str, set[str]] = {}
    for step in steps:
        ops.setdefault(step.urn, set()).add(step.op)
    return frozenset(u for u, o in ops.items() if o & DELETING_OPS and not o & REPLACING_OPS)


def judge_step(
    step: Step, roles: Mapping[str, Role] = KNOWN_TYPES, *, plain_delete: bool = False
) -> Judgement:
    """Judge one step by its resource's role and its operation's kind.

    `plain_delete` says that no step of the plan puts a new object in place of this URN's (see
    plain_deletes): its `delete-replaced` or `remove-pending-replace` is then a plain delete.
    """
    role = role_of(step.type_token, roles)
    kind = OP_KINDS.get(step.op, _Kind.UNKNOWN)
    what = role.value if role else f"unknown type {step.type_token or '(no type in URN)'}"
    how = ""
    if plain_delete and step.op in DELETING_OPS and kind is _Kind.REPLACE:
        kind = _Kind.DELETE
        how = f" (`{step.op}` with no replacement of the same URN: it left the program)"
    if step.outputs_only:
        how += " (seen only in an outputs event: the log is cut or rewritten)"

    def verdict(v: Verdict, reason: str) -> Judgement:
        return Judgement(step, role, v, reason + how)

    if role in (Role.PULUMI_INTERNAL, Role.COMPONENT):
        return verdict(Verdict.SAFE, f"{what}: owns no cloud object")
    if kind is _Kind.KEEP:
        return verdict(Verdict.SAFE, f"{step.op} {kind.value}")
    if kind is _Kind.UNKNOWN:
        return verdict(Verdict.FORBIDDEN, f"`{step.op}` {kind.value} (fails closed)")
    action = "replace" if kind is _Kind.REPLACE else "delete"
    if role is None:
        return verdict(Verdict.FORBIDDEN, f"{action} of an {what}: the guard fails closed")
    if role in _MUST_SURVIVE:
        return verdict(Verdict.FORBIDDEN, f"{action} of the {what}: it must survive")
    if role is Role.PROVISIONING:
        return verdict(Verdict.SAFE, f"{action} of a {what}: it only re-runs or stops running")
    if kind is _Kind.DELETE:
        return verdict(Verdict.FORBIDDEN, f"plain delete of the {what}, not part of a replacement")
    if role is Role.INSTANCE:
        return verdict(Verdict.REBUILD, f"replace of the {what}: needs the guarded rebuild cycle")
    assert role in _FOLLOWS_INSTANCE
    return verdict(Verdict.SAFE, f"replace of the {what}: it follows the instance")


# The engine's protection errors (see the module docstring), each up to its closing command, so
# that several in one text (a caller may join them) are all found and nothing else is hidden.
_Q = r'"(?:[^"\\]|\\.)*"'  # Go's %q of a URN
_TAIL = (
    r"(?:(?:(?!unable to |resource \").)*?`pulumi up`"
    r"(?:,? or use the command:?\s*`pulumi state unprotect [^`]*`)?)?"
)
_PROTECTION = re.compile(
    rf"unable to (?P<action>replace|delete) resource (?P<urn>{_Q})"
    rf"(?: as part of replacing (?P<because>{_Q}))?"
    rf"\s+as it is currently marked for protection\.{_TAIL}"
    rf"|resource (?P<deleted>{_Q})\s+cannot be deleted\s+because it is protected\.{_TAIL}",
    re.S,
)
# The engine's closing summary of any failed run (deployment_executor.go reportExecResult).
_SUMMARY = re.compile(r"^\s*(?:error:\s*)?(?:preview|update) (?:failed|canceled)\s*$", re.M)
_PREFIX = re.compile(r"^\s*error:\s*", re.M)
_MARKUP = re.compile(r"<\{%[^%]*%\}>|\x1b\[[0-9;]*[A-Za-z]")


def _unquote(quoted: str) -> str:
    try:
        return str(json.loads(quoted))
    except ValueError:
        return quoted[1:-1]


def _judge_protection(match: re.Match[str], roles: Mapping[str, Role]) -> list[Judgement]:
    """The protected resource's judgement, and for a dependent's error also the replacement
    that forces it (`unable to replace resource A as part of replacing B`): B is the change."""
    judgements = [_judge_protected(match, roles)]
    if match.group("because"):
        cause = _unquote(match.group("because"))
        judged = judge_step(Step(urn=cause, op="replace"), roles)
        judgements.append(
            Judgement(
                Step(urn=cause, op=ERROR_OP),
                judged.role,
                judged.verdict,
                f"its replacement forces the replacement of the protected "
                f"{_unquote(match.group('urn'))}: {judged.reason}",
            )
        )
    return judgements


def _judge_protected(match: re.Match[str], roles: Mapping[str, Role]) -> Judgement:
    urn = _unquote(match.group("urn") or match.group("deleted"))
    role = role_of(type_token_of(urn), roles)
    step = Step(urn=urn, op=ERROR_OP)
    what = role.value if role else "resource of unknown type"
    if match.group("action") != "replace":
        # The engine raises this only for a delete outside a replacement (step.go: !replacing).
        return Judgement(
            step, role, Verdict.FORBIDDEN,
            f"the change would delete the protected {what} outright (not a replacement)",
        )  # fmt: skip
    if role is Role.INSTANCE:
        return Judgement(
            step, role, Verdict.REBUILD,
            "the instance is protected and must be replaced: needs the guarded rebuild cycle",
        )  # fmt: skip
    return Judgement(
        step, role, Verdict.FORBIDDEN,
        f"the change would replace the protected {what}: it must survive",
    )  # fmt: skip


def judge_errors(
    messages: Iterable[str], roles: Mapping[str, Role] = KNOWN_TYPES
) -> list[Judgement]:
    """Judge engine errors: protection on the instance is a rebuild; anything else is forbidden.

    Every protection error in a message is judged; whatever else a message says makes the plan
    incomplete, so it fails closed. The engine's closing "preview failed" only counts when no
    other error says why.
    """
    judgements: list[Judgement] = []
    summaries: list[str] = []
    for message in messages:
        text = _MARKUP.sub("", message)
        found = [j for m in _PROTECTION.finditer(text) for j in _judge_protection(m, roles)]
        judgements += found
        rest = _PROTECTION.sub("", text)
        said = [m.group(0).strip() for m in _SUMMARY.finditer(rest)]
        summaries += said
        rest = _PREFIX.sub("", _SUMMARY.sub("", rest)).strip()
        if not rest and not found and not said:
            # An error whose text is empty is still an error: the plan is incomplete.
            judgements.append(
                Judgement(
                    Step(urn="", op=ERROR_OP),
                    None,
                    Verdict.FORBIDDEN,
                    "the engine reported an error with an empty message (fails closed)",
                )
            )
        elif rest:
            judgements.append(
                Judgement(
                    Step(urn="", op=ERROR_OP),
                    None,
                    Verdict.FORBIDDEN,
                    "the preview failed, so the plan is incomplete (fails closed): "
                    + rest.splitlines()[0],
                )  # fmt: skip
            )
    if summaries and not judgements:
        judgements.append(
            Judgement(
                Step(urn="", op=ERROR_OP),
                None,
                Verdict.FORBIDDEN,
                f"the engine said `{summaries[0]}` without a reason (fails closed)",
            )  # fmt: skip
        )
    return judgements


def judge(
    steps: Iterable[Step],
    errors: Iterable[str] = (),
    roles: Mapping[str, Role] = KNOWN_TYPES,
    notes: Iterable[str] = (),
) -> Report:
    """Judge every step and engine error; the verdict is the worst judgement's (safe if none).

    The steps of one URN are judged together: a delete with no replacement is a plain delete.
    `notes` (from read_plan) say what the input cannot show; they are rendered with the verdict.
    """
    steps = list(steps)
    errors = tuple(errors)
    plain = plain_deletes(steps)
    judgements = [judge_step(s, roles, plain_delete=s.urn in plain) for s in steps]
    judgements += judge_errors(errors, roles)
    worst = max((j.verdict for j in judgements), default=Verdict.SAFE)
    return Report(
        verdict=worst,
        judgements=tuple(judgements),
        errors=errors,
        counts=dict(Counter(s.op for s in steps)),
        notes=tuple(notes),
    )


# ---------------------------------------------------------------- reading plans

_EVENT_KEYS = frozenset({
    "cancelEvent", "stdoutEvent", "diagnosticEvent", "preludeEvent", "summaryEvent",
    "resourcePreEvent", "resOutputsEvent", "resOpFailedEvent", "policyEvent",
    "policyRemediationEvent", "policyLoadEvent", "policyAnalyzeSummaryEvent",
    "policyRemediateSummaryEvent", "policyAnalyzeStackSummaryEvent", "startDebuggingEvent",
    "progressEvent", "errorEvent",
})  # fmt: skip
_ENVELOPE_KEYS = frozenset({"sequence", "timestamp"})  # apitype.EngineEvent's other fields
_DIGEST_KEYS = frozenset(
    {"steps", "diagnostics", "changeSummary", "config", "duration", "maybeCorrupt"}
)  # display.PreviewDigest, all of it
_BATCH_KEYS = frozenset({"events", "continuationToken"})  # EngineEventBatch / the service's page
# SummaryEvent.result of a run that finished (empty: engines older than the field).
_FINISHED_RESULTS = frozenset({"", "succeeded", "failed"})

HIDDEN_STEPS_NOTE = (
    "`pulumi preview --json` leaves out each resource's replacement steps, so it cannot show a "
    "resource deleted (not replaced) because it left the program while something it depends on "
    "is replaced; for the whole plan judge the event log (`pulumi preview --event-log FILE`) or "
    "run the preview with `--show-replacement-steps`"
)


class Plan(NamedTuple):
    """What read_plan found: the steps, the engine's error messages, and notes on the input."""

    steps: list[Step]
    errors: list[str]
    notes: tuple[str, ...] = ()


def judge_plan(plan: Plan, roles: Mapping[str, Role] = KNOWN_TYPES) -> Report:
    """judge() of a read plan, keeping its notes."""
    return judge(plan.steps, plan.errors, roles, plan.notes)


def _unreadable(message: str) -> UnreadablePlan:
    return UnreadablePlan(message, hint=PREVIEW_HINT)


def _get(obj: Any, json_name: str, py_name: str | None = None) -> Any:
    """A field of a raw JSON event (dict) or of a pulumi.automation event object."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(json_name)
    return getattr(obj, py_name or json_name, None)


def _text(value: Any) -> str:
    value = getattr(value, "value", value)  # OpType is a str Enum
    return "" if value is None else str(value)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def _is_error(severity: Any) -> bool:
    return _text(severity) == "error"


def _finished(events: list[Any]) -> None:
    """Raise unless the events are a whole preview: a prelude first, a summary of a finished run.

    A log cut short (the CLI killed, the file truncated) or a canceled preview lacks steps the
    engine never got to, so judging it would pass a plan nobody has seen.
    """
    summaries = [s for e in events if (s := _get(e, "summaryEvent", "summary_event")) is not None]
    if not summaries:
        raise _unreadable(
            "the preview did not finish: the event log has no summaryEvent (it was cut short "
            "or canceled), so steps may be missing"
        )
    result = _text(_get(summaries[-1], "result"))
    if result not in _FINISHED_RESULTS:
        raise _unreadable(f"the preview did not finish: its summary says `{result}`")
    if _get(events[0], "preludeEvent", "prelude_event") is None:
        raise _unreadable(
            "the event log does not begin with the engine's preludeEvent: its start is missing"
        )
    sequence = [_get(e, "sequence") for e in events]
    if all(isinstance(n, int) and not isinstance(n, bool) for n in sequence):
        gaps = [(a, b) for a, b in zip(sequence, sequence[1:], strict=False) if b != a + 1]
        if gaps:
            raise _unreadable(
                f"the event log skips from sequence {gaps[0][0]} to {gaps[0][1]}: events are "
                "missing or out of order"
            )


def steps_from_engine_events(
    events: Iterable[Any], *, require_finished: bool = False
) -> tuple[list[Step], list[str]]:
    """Steps and error messages from engine events (Automation API objects or raw JSON dicts).

    Steps come from resourcePreEvent; a resOutputsEvent or resOpFailedEvent adds one when no
    pre-event showed that URN and op (a cut or rewritten log: after a `pulumi refresh` the op of
    an outputs event is the refresh's result, `delete` for an object found gone). `keys` and
    `diffs` are read, never `detailedDiff` (always empty in Python). An error diagnostic counts
    even with an empty message. With `require_finished` the events must be a whole, finished
    preview (see _finished), else UnreadablePlan.
    """
    events = list(events)
    if require_finished:
        _finished(events)
    steps: list[Step] = []
    seen: set[tuple[str, str]] = set()
    errors: list[str] = []
    for event in events:
        diagnostic = _get(event, "diagnosticEvent", "diagnostic_event")
        if diagnostic is not None and _is_error(_get(diagnostic, "severity")):
            errors.append(_MARKUP.sub("", _text(_get(diagnostic, "message"))).strip())
        error_event = _get(event, "errorEvent", "error_event")
        if error_event is not None:
            errors.append(_text(_get(error_event, "error")).strip())
        for json_name, py_name, is_pre in (
            ("resourcePreEvent", "resource_pre_event", True),
            ("resOutputsEvent", "res_outputs_event", False),
            ("resOpFailedEvent", "res_op_failed_event", False),
        ):
            payload = _get(event, json_name, py_name)
            if payload is None:
                continue
            meta = _get(payload, "metadata")
            urn, op = _text(_get(meta, "urn")), _text(_get(meta, "op"))
            if (urn, op) in seen:
                continue
            seen.add((urn, op))
            steps.append(
                Step(
                    urn,
                    op,
                    _strings(_get(meta, "keys")),
                    _strings(_get(meta, "diffs")),
                    outputs_only=not is_pre,
                )
            )
    return steps, errors


def steps_from_preview_digest(digest: Mapping[str, Any]) -> Plan:
    """Steps, error messages and notes from the document `pulumi preview --json` prints.

    It must be that document and nothing else: a `steps` list (`[]` for an empty stack), and
    only the digest's own keys, so that an event or a key the guard does not read cannot ride
    along unjudged.
    """
    strange = sorted(set(digest) - _DIGEST_KEYS)
    if strange:
        kind = "engine event keys" if _EVENT_KEYS & set(strange) else "keys it does not have"
        raise _unreadable(
            f"this `pulumi preview --json` output carries {kind} ({', '.join(strange)}): "
            "one document must be either a preview digest or an engine event"
        )
    if "steps" not in digest:
        diagnostics = digest.get("diagnostics")
        failed = [
            d.get("message") for d in (diagnostics if isinstance(diagnostics, list) else [])
            if isinstance(d, Mapping) and _is_error(d.get("severity"))
        ]  # fmt: skip
        said = f"; the preview's error: {str(failed[0]).strip()}" if failed else ""
        raise _unreadable(f"the `pulumi preview --json` output has no `steps`{said}")
    raw_steps = digest["steps"]
    raw_diagnostics = digest.get("diagnostics", [])
    if not isinstance(raw_steps, list) or not isinstance(raw_diagnostics, list):
        raise _unreadable(
            "`steps` and `diagnostics` must be lists in `pulumi preview --json` output"
        )
    steps = []
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, Mapping) or not all(
            isinstance(raw.get(k), str) and raw.get(k) for k in ("op", "urn")
        ):
            raise _unreadable(
                f"step {index} has no `op` and `urn`: not `pulumi preview --json` output"
            )
        steps.append(
            Step(
                raw["urn"],
                raw["op"],
                _strings(raw.get("replaceReasons")),
                _strings(raw.get("diffReasons")),
            )
        )
    errors = []
    for index, raw in enumerate(raw_diagnostics):
        if not isinstance(raw, Mapping):
            raise _unreadable(f"diagnostic {index} is not an object: not `pulumi preview --json`")
        if _is_error(raw.get("severity")):
            errors.append(_MARKUP.sub("", _text(raw.get("message"))).strip())
    ops = {s.op for s in steps}
    notes = (HIDDEN_STEPS_NOTE,) if "replace" in ops and not ops & _HIDDEN_OPS else ()
    return Plan(steps, errors, notes)


# The replacement steps `preview --json` shows only with --show-replacement-steps.
_HIDDEN_OPS = frozenset({"create-replacement", "delete-replaced", "remove-pending-replace"})


def _check_event(value: Any, where: str) -> None:
    """Raise unless `value` is one apitype.EngineEvent: exactly one event, nothing foreign."""
    if not isinstance(value, Mapping):
        raise _unreadable(f"{where} is not an engine event object")
    kinds = _EVENT_KEYS & value.keys()
    strange = sorted(set(value) - _EVENT_KEYS - _ENVELOPE_KEYS)
    if len(kinds) != 1 or strange:
        detail = (
            f"keys that are not an engine event's ({', '.join(strange)})"
            if strange
            else f"{len(kinds)} events in one object"
        )
        raise _unreadable(f"{where} is not a well-formed engine event: it has {detail}")
    (kind,) = kinds
    if not isinstance(value[kind], Mapping):
        raise _unreadable(f"{where}: `{kind}` is not an object")


def _looks_like_event(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(_EVENT_KEYS & value.keys())


def _reject_constant(name: str) -> Any:
    # Go's encoding/json never writes NaN or Infinity: such input was not written by the engine.
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    """json.loads, strict about what the engine never writes, and safe against deep nesting."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as error:
        raise _unreadable("the JSON is nested too deeply to be engine output") from error


def _events_plan(events: list[Any], where: str) -> Plan:
    for number, event in enumerate(events, start=1):
        _check_event(event, f"{where} {number}")
    steps, errors = steps_from_engine_events(events, require_finished=True)
    return Plan(steps, errors)


def read_plan(text: str) -> Plan:
    """Steps, error messages and notes from `pulumi preview --json` output or an engine event log.

    The form is detected from the content, and the content must be all of one form: a whole
    digest, or a whole event log of a finished preview. Raises UnreadablePlan for anything else.
    """
    if not text.strip():
        raise _unreadable("the plan is empty")
    try:
        whole: Any = _loads(text)
    except ValueError:
        pass  # not one JSON document: JSON lines, read below
    else:
        if isinstance(whole, Mapping) and "events" in whole and not _looks_like_event(whole):
            if set(whole) - _BATCH_KEYS or not isinstance(whole["events"], list):
                raise _unreadable("this engine event batch has keys or a shape it should not")
            return _events_plan(whole["events"], "event")
        if isinstance(whole, Mapping) and _DIGEST_KEYS & whole.keys():
            return steps_from_preview_digest(whole)
        if _looks_like_event(whole):
            return _events_plan([whole], "event")
        if isinstance(whole, list) and whole and all(_looks_like_event(e) for e in whole):
            return _events_plan(whole, "event")
        raise _unreadable(
            "this JSON is neither `pulumi preview --json` output (an object with `steps`) nor "
            "an engine event log (one event object per line)"
        )
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = _loads(line)
        except json.JSONDecodeError as error:
            raise _unreadable(
                f"line {number} is not JSON ({error.msg}): the plan is neither "
                "`pulumi preview --json` output nor an engine event log"
            ) from error
        except ValueError as error:
            raise _unreadable(f"line {number} is not JSON ({error})") from error
        except UnreadablePlan as error:
            raise _unreadable(f"line {number}: {error.message}") from error
        if not _looks_like_event(event):
            raise _unreadable(f"line {number} is JSON but not an engine event")
        events.append(event)
    return _events_plan(events, "line")


# ---------------------------------------------------------------- rendering

HEADLINES: Mapping[Verdict, str] = MappingProxyType(
    {
        Verdict.SAFE: "safe: nothing that must survive is deleted or replaced",
        Verdict.REBUILD: (
            "needs the rebuild cycle: the change replaces the instance; "
            "run `python scripts/rebuild.py --stack prod` instead of `pulumi up`"
        ),
        Verdict.FORBIDDEN: (
            "forbidden: the change would delete or replace something that must survive; "
            "change the program, do not apply this plan"
        ),
    }
)


def _counts_line(report: Report) -> str:
    if not report.counts:
        return "no steps"
    return ", ".join(f"{op} {n}" for op, n in sorted(report.counts.items()))


@dataclass(frozen=True)
class _Offence:
    verdict: Verdict
    ops: tuple[str, ...]
    subject: str
    reasons: tuple[str, ...]
    keys: tuple[str, ...]  # the properties that force a replacement


def _offences(report: Report) -> list[_Offence]:
    """The offending judgements grouped by URN (a replacement is up to three steps), worst first."""
    grouped: dict[str, list[Judgement]] = {}
    for j in report.offending:
        grouped.setdefault(j.step.urn, []).append(j)
    offences = [
        _Offence(
            verdict=max(j.verdict for j in group),
            ops=tuple(dict.fromkeys(j.step.op for j in group)),
            subject=urn or "(the stack)",
            reasons=tuple(dict.fromkeys(j.reason for j in group)),
            keys=tuple(dict.fromkeys(k for j in group for k in j.step.keys)),
        )
        for urn, group in grouped.items()
    ]
    return sorted(offences, key=lambda o: -o.verdict)


def render(report: Report, fmt: str = "text") -> str:
    """The verdict, each offending URN with the reason, and the step counts, as text or markdown."""
    if fmt == "markdown":
        return _render_markdown(report)
    if fmt != "text":
        raise UsageError(f"unknown format {fmt!r}", hint="use --format text or --format markdown")
    lines = [f"plan guard: {report.verdict.name} (exit {int(report.verdict)})"]
    lines.append(f"  {HEADLINES[report.verdict]}")
    lines += [f"  note: {note}" for note in report.notes]
    for offence in _offences(report):
        lines.append(f"  {offence.verdict.name:<9} {offence.subject}")
        lines.append(f"            steps: {', '.join(offence.ops)}")
        lines += [f"            why: {reason}" for reason in offence.reasons]
        if offence.keys:
            lines.append(f"            forced by: {', '.join(offence.keys)}")
    lines.append(f"steps: {_counts_line(report)}")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render_markdown(report: Report) -> str:
    lines = [
        f"### Plan guard: **{report.verdict.name}** (exit {int(report.verdict)})",
        "",
        _cell(HEADLINES[report.verdict]),
        "",
    ]
    for note in report.notes:
        lines += [f"> **Note:** {_cell(note)}", ""]
    offences = _offences(report)
    if offences:
        lines += ["| verdict | resource | steps | why |", "|---|---|---|---|"]
        for o in offences:
            ops = ", ".join(f"`{op}`" for op in o.ops)
            why = _cell("; ".join(o.reasons))
            if o.keys:
                why += _cell(f" (forced by: {', '.join(o.keys)})")
            lines.append(f"| {o.verdict.name} | `{_cell(o.subject)}` | {ops} | {why} |")
        lines.append("")
    lines.append(f"Steps: {_counts_line(report)}")
    return "\n".join(lines) + "\n"


def read_plan_file(path: str, stdin_text: str | None = None) -> Plan:
    """read_plan on a file (`-` for the given stdin text), with errors naming the file."""
    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            text = stdin_text if stdin_text is not None else ""
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except FileNotFoundError as error:
        raise UnreadablePlan(f"plan file {name} does not exist", hint=PREVIEW_HINT) from error
    except IsADirectoryError as error:
        raise UnreadablePlan(f"plan file {name} is a directory", hint=PREVIEW_HINT) from error
    except UnicodeDecodeError as error:
        raise UnreadablePlan(f"plan file {name} is not UTF-8 text", hint=PREVIEW_HINT) from error
    except OSError as error:
        raise UnreadablePlan(
            f"cannot read plan file {name}: {error.strerror}", hint=PREVIEW_HINT
        ) from error
    try:
        return read_plan(text)
    except UnreadablePlan as error:
        raise UnreadablePlan(f"{name}: {error.message}", hint=error.hint) from error
