"""The offline plan: the real program evaluated under Pulumi's mock runtime.

No engine, no credentials, no network: `pulumi.runtime.set_mocks` stands in for the engine and
`FakeCloud` for the providers. `RecordingMonitor` keeps each RegisterResourceRequest, which
carries the options the engine would act on (protect, dependencies, deleteBeforeReplace,
parent, replaceWith), so the plan shows exactly what the program asks for. What it cannot show
is what the providers and the cloud would do with it: that is for `pulumi preview`.

`scripts/plan.py` is a thin wrapper around `main()`; the tests use `evaluate()` directly.
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import json
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from freescout import program
from freescout import settings as config
from operations import exitcodes
from operations.errors import UsageError

PROJECT = "freescout"
SECRET = "[secret]"
UNKNOWN = "[unknown]"
PLAN_PRIVATE_KEY = "[plan stand-in: no private key is read]"
# Markers of Pulumi's wire format for secrets and unknowns inside a Struct.
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass(frozen=True)
class Registration:
    """One resource as the program registered it, with the options the engine would get."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    protect: bool
    delete_before_replace: bool
    depends_on: tuple[str, ...]
    property_dependencies: Mapping[str, tuple[str, ...]]
    replace_with: tuple[str, ...]
    inputs: Mapping[str, Any]
    secret_inputs: Mapping[str, Any] = field(repr=False)
    """`inputs` with secrets revealed (tests compare them); never printed."""

    def to_json(self, depends_on: list[str] | None = None) -> dict[str, Any]:
        """The object `--json` prints for this resource (secret values masked).

        `depends_on` is the dependency list in the order to print (default: as registered).
        """
        return {
            "type": self.type,
            "name": self.name,
            "urn": self.urn,
            "parent": self.parent or None,
            "custom": self.custom,
            "protect": self.protect,
            "deleteBeforeReplace": self.delete_before_replace,
            "dependsOn": list(self.depends_on) if depends_on is None else depends_on,
            "replaceWith": list(self.replace_with),
            "inputs": self.inputs,
        }


def _decode(value: Any, *, reveal: bool) -> Any:
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _decode(value.get("value"), reveal=True) if reveal else SECRET
        return {k: _decode(v, reveal=reveal) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, reveal=reveal) for v in value]
    if value == _UNKNOWN_VALUE:
        return UNKNOWN
    return value


def registration_from_request(request: Any, urn: str) -> Registration:
    """A Registration from a RegisterResourceRequest and the URN the monitor gave it."""
    raw = json_format.MessageToDict(request.object) if request.HasField("object") else {}
    return Registration(
        type=request.type,
        name=request.name,
        urn=urn,
        parent=request.parent,
        custom=request.custom,
        protect=request.protect if request.HasField("protect") else False,
        delete_before_replace=request.deleteBeforeReplace,
        depends_on=tuple(dict.fromkeys(request.dependencies)),
        property_dependencies={
            k: tuple(v.urns) for k, v in request.propertyDependencies.items()
        },
        replace_with=tuple(request.replace_with),
        inputs=_decode(raw, reveal=False),
        secret_inputs=_decode(raw, reveal=True),
    )


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, keeping every RegisterResourceRequest (the stack's included)."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self._lock = threading.Lock()
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 (the gRPC method's name)
        response = super().RegisterResource(request)
        copy = resource_pb2.RegisterResourceRequest()
        copy.CopyFrom(request)
        # Registrations arrive on executor threads; the lock keeps the list's order whole.
        with self._lock:
            self.registrations.append(registration_from_request(copy, response.urn))
        return response


class FakeCloud(pulumi.runtime.Mocks):
    """Stands in for the AWS, Cloudflare, random and command providers.

    Each resource's outputs are its inputs plus made-up values for what the cloud would fill in
    (ARNs, a TEST-NET address, a creation time, generated passwords, snapshot names). It does
    not prove that a provider accepts these inputs or that the cloud behaves as assumed.
    `instance_generation` stands for "a new instance" (new ARN and creation time);
    `password_salt` for "the random provider generated other passwords".
    """

    def __init__(self, *, instance_generation: int = 1, password_salt: str = "a"):
        self.instance_generation = instance_generation
        self.password_salt = password_salt

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        kind = args.typ
        if kind == "aws:lightsail/instance:Instance":
            gen = self.instance_generation
            state["arn"] = f"arn:aws:lightsail:us-east-1:000000000000:Instance/mock-{gen}"
            state["created_at"] = f"2000-01-01T00:00:{gen:02d}Z"
            state["username"] = "admin"
        elif kind == "aws:lightsail/staticIp:StaticIp":
            state["ip_address"] = "192.0.2.10"
            state["arn"] = "arn:aws:lightsail:us-east-1:000000000000:StaticIp/mock"
        elif kind == "random:index/randomPassword:RandomPassword":
            digest = hashlib.sha256(f"{self.password_salt}:{args.name}".encode()).hexdigest()
            state["result"] = ("Mock" + digest)[: int(args.inputs.get("length", 32))]
        elif kind == "aws:ssm/parameter:Parameter":
            state["arn"] = f"arn:aws:ssm:us-east-1:000000000000:parameter{args.inputs['name']}"
        elif kind == "command:local:Command":
            state["stdout"] = f"mock-snapshot-of-{args.name}"
        elif kind == "command:remote:Command":
            state["stdout"] = ""
        return f"{args.name}-mock-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


@dataclass
class Evaluation:
    """What one evaluation of the program registered, and the stack outputs it exported."""

    registrations: list[Registration]
    outputs: dict[str, Any]

    def by_type(self, type_: str) -> list[Registration]:
        """The registrations of one resource type, in registration order."""
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str) -> Registration:
        """The single registration of a type; AssertionError naming the URNs otherwise."""
        found = self.by_type(type_)
        assert len(found) == 1, f"expected one {type_}, got {[r.urn for r in found]}"
        return found[0]

    def by_urn(self) -> dict[str, Registration]:
        """Registrations keyed by URN."""
        return {r.urn: r for r in self.registrations}

    def creation_order(self) -> list[Registration]:
        """Registrations ordered so each comes after its parent and its dependencies.

        Registration order itself is not stable (the SDK registers on several threads), so
        ties are broken by a fixed key: the components in the program's order, then by name.
        """
        by_urn = self.by_urn()
        needs = {
            r.urn: {u for u in (r.parent, *r.depends_on) if u and u in by_urn and u != r.urn}
            for r in self.registrations
        }
        placed: set[str] = set()
        ordered: list[Registration] = []
        pending = {r.urn: r for r in self.registrations}
        while pending:
            ready = [r for u, r in pending.items() if needs[u] <= placed]
            if not ready:
                raise ValueError(f"dependency cycle among {sorted(pending)}")
            best = min(ready, key=_tie_key)
            ordered.append(best)
            placed.add(best.urn)
            del pending[best.urn]
        return ordered

    def sorted_urns(self, urns: tuple[str, ...]) -> list[str]:
        """URNs in creation order (unknown URNs last, in their given order)."""
        index = {r.urn: i for i, r in enumerate(self.creation_order())}
        return sorted(urns, key=lambda u: index.get(u, len(index)))


COMPONENT_ORDER = (
    "raxx:freescout:Host",
    "raxx:freescout:Secrets",
    "raxx:freescout:Dns",
    "raxx:freescout:Provisioning",
)


def _tie_key(reg: Registration) -> tuple[int, str, str]:
    rank = COMPONENT_ORDER.index(reg.type) if reg.type in COMPONENT_ORDER else len(COMPONENT_ORDER)
    return rank, reg.name, reg.type


def evaluate(settings: config.Settings, *, private_key: str = PLAN_PRIVATE_KEY,
             cloud: FakeCloud | None = None,
             define: Callable[..., dict[str, pulumi.Output]] = program.define) -> Evaluation:
    """Run the program once under mocks and return what it registered and exported.

    Each evaluation runs in a fresh context, so the runtime's globals (root stack, config,
    settings) of one evaluation never leak into the next.
    """
    return contextvars.Context().run(_evaluate, settings, private_key, cloud or FakeCloud(),
                                     define)


def _evaluate(settings: config.Settings, private_key: str, cloud: FakeCloud,
              define: Callable[..., dict[str, pulumi.Output]]) -> Evaluation:
    monitor = RecordingMonitor(cloud)
    pulumi.runtime.set_mocks(cloud, project=PROJECT, stack=settings.stack or "stack",
                             preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    async def run() -> None:
        exports = define(settings, pulumi.Output.secret(private_key))
        outputs.update(await pulumi.Output.from_input(exports).future() or {})

    _sync_await(run_pulumi_func(run))
    return Evaluation(list(monitor.registrations), outputs)


# ---- the stack file and the stand-ins for what is unset ------------------------------------

@dataclass(frozen=True)
class StackConfig:
    """The config of Pulumi.<stack>.yaml: values, which keys are secret, which are encrypted."""

    stack: str
    values: dict[str, Any]
    secret_keys: frozenset[str]
    encrypted_keys: frozenset[str]


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    """Read Pulumi.<stack>.yaml (settings.read_stack_file: values as the engine passes them).

    Encrypted values cannot be read offline: they count as set.
    """
    found = config.read_stack_file(project_dir, stack)
    return StackConfig(stack, dict(found.values), found.encrypted, found.encrypted)


@dataclass(frozen=True)
class Prepared:
    """Settings for the plan, plus what had to be stood in for and what is plainly wrong."""

    settings: config.Settings | None
    unset: list[config.Problem]
    problems: list[config.Problem]


def stand_in(problem: config.Problem) -> tuple[Any, bool]:
    """A visible value for an unset key, and whether it is a secret."""
    if problem.key == config.MODULES_KEY:
        return [], False
    if problem.key == f"{config.NS}:hostname":
        # It goes into user_data, which takes only sh-safe characters; .invalid never resolves.
        return "unset-hostname.invalid", False
    spec = config.ALL_SPECS.get(problem.key)
    if spec is not None and spec.secret:
        return f"[plan stand-in for unset secret {problem.key}]", True
    return f"[unset {problem.key}]", False


def prepare(stack_config: StackConfig) -> Prepared:
    """Validate the stack's config; stand in for unset keys; keep every other problem."""
    problems = config.validate(stack_config.values, stack_config.secret_keys)
    unset = [p for p in problems if p.kind == "missing"]
    others = [p for p in problems if p.kind != "missing"]
    if others:
        return Prepared(None, unset, others)
    values = dict(stack_config.values)
    secret_keys = set(stack_config.secret_keys)
    for problem in unset:
        value, secret = stand_in(problem)
        values[problem.key] = value
        if secret:
            secret_keys.add(problem.key)
    return Prepared(config.build(values, stack=stack_config.stack), unset, [])


# ---- rendering ------------------------------------------------------------------------------

def _short(reg: Registration) -> str:
    return f"{reg.name} ({reg.type.rsplit(':', 1)[-1]})"


def render_tree(evaluation: Evaluation) -> str:
    """The resources as a tree by parent, each level in creation order, with their options."""
    order = evaluation.creation_order()
    by_urn = evaluation.by_urn()
    children: dict[str, list[Registration]] = {}
    for reg in order:
        children.setdefault(reg.parent if reg.parent in by_urn else "", []).append(reg)
    lines: list[str] = []

    def walk(parent: str, prefix: str) -> None:
        kids = children.get(parent, [])
        for index, reg in enumerate(kids):
            last = index == len(kids) - 1
            branch = "" if not parent else ("└─ " if last else "├─ ")
            flags = []
            if reg.custom:
                flags.append(f"protect={'yes' if reg.protect else 'no'}")
                dbr = "yes" if reg.delete_before_replace else "no"
                flags.append(f"delete-before-replace={dbr}")
            lines.append(f"{prefix}{branch}{reg.type}  {reg.name}"
                         + (f"  [{', '.join(flags)}]" if flags else ""))
            below = prefix + ("" if not parent else ("   " if last else "│  "))
            deps = [by_urn[u] for u in evaluation.sorted_urns(reg.depends_on)
                    if u in by_urn and u != reg.parent]
            if deps:
                lines.append(f"{below}{'   ' if kids_of(reg) == [] else '│  '}"
                             f"depends on: {', '.join(_short(d) for d in deps)}")
            if reg.replace_with:
                names = [_short(by_urn[u]) if u in by_urn else u for u in reg.replace_with]
                lines.append(f"{below}{'   ' if kids_of(reg) == [] else '│  '}"
                             f"replaced with: {', '.join(names)}")
            walk(reg.urn, below)

    def kids_of(reg: Registration) -> list[Registration]:
        return children.get(reg.urn, [])

    walk("", "")
    return "\n".join(lines)


def summary(evaluation: Evaluation) -> str:
    """Counts by resource type (custom resources only), in first-seen order."""
    counts: dict[str, int] = {}
    for reg in evaluation.creation_order():
        if reg.custom:
            counts[reg.type] = counts.get(reg.type, 0) + 1
    modules = [r for r in evaluation.by_type("command:remote:Command") if "-module-" in r.name]
    lines = [f"  {n:>2} x {t}" for t, n in counts.items()]
    lines.append(f"  module installs: {len(modules)}")
    return "\n".join(lines)


def render_problems(title: str, problems: list[config.Problem]) -> str:
    """A titled list of problems with their fix commands."""
    return "\n".join([title, *[p.render() for p in problems]])


# ---- command line ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The arguments of scripts/plan.py."""
    parser = argparse.ArgumentParser(
        prog="python scripts/plan.py",
        description="Show what the FreeScout program would declare, evaluated offline under "
        "Pulumi's mock runtime: no credentials, no network, no secret needed.",
        epilog=f"exit codes: {exitcodes.OK} plan shown; {exitcodes.USAGE} config problems "
        "other than unset values, or no stack file.",
    )
    parser.add_argument("--stack", default="prod", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON array, one object per resource")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str], project_dir: Path) -> int:
    """Entry point of scripts/plan.py; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args, project_dir)
    except UsageError as e:
        if args.debug:
            raise
        print(e.render(), file=sys.stderr)
        return e.exit_code


def _run(args: argparse.Namespace, project_dir: Path) -> int:
    stack_config = load_stack_config(project_dir, args.stack)
    prepared = prepare(stack_config)
    if not stack_config.values:
        # Nothing set at all is a stack file not yet written, not a plan with stand-ins.
        print(render_problems(
            f"Pulumi.{args.stack}.yaml holds no config: set the stack's values first:",
            prepared.unset), file=sys.stderr)
        return exitcodes.USAGE
    if prepared.problems:
        print(render_problems(
            f"The config of stack '{args.stack}' has problems (pulumi up would stop on them):",
            prepared.problems + prepared.unset), file=sys.stderr)
        return exitcodes.USAGE
    assert prepared.settings is not None
    evaluation = evaluate(prepared.settings)
    out = sys.stdout
    if args.json:
        json.dump([r.to_json(evaluation.sorted_urns(r.depends_on))
                   for r in evaluation.creation_order()], out, indent=2)
        out.write("\n")
        notes = sys.stderr
    else:
        out.write(f"Offline plan of stack '{args.stack}' (Pulumi mock runtime; "
                  "no cloud was contacted)\n\n")
        out.write(render_tree(evaluation) + "\n\nResources:\n" + summary(evaluation) + "\n")
        notes = out
    if stack_config.encrypted_keys:
        notes.write("\nEncrypted in the stack file (set; not decrypted here): "
                    f"{', '.join(sorted(stack_config.encrypted_keys))}\n")
    secrets = [p for p in prepared.unset if _is_secret(p.key)]
    plain = [p for p in prepared.unset if not _is_secret(p.key)]
    if plain:
        notes.write("\n" + render_problems(
            "Unset settings (`pulumi preview`/`up` refuse to run until they are set):",
            plain) + "\n")
    if secrets:
        notes.write("\n" + render_problems(
            "Unset secrets (stand-ins used in this plan; `pulumi up` refuses to run until set):",
            secrets) + "\n")
    return exitcodes.OK


def _is_secret(key: str) -> bool:
    spec = config.ALL_SPECS.get(key)
    return bool(spec and spec.secret)
