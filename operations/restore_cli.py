"""Command line of scripts/restore.py: parse arguments, wire adapters, run, map errors to codes."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from operations import exitcodes
from operations.errors import OpsError
from operations.ports import Lightsail
from operations.progress import Progress
from operations.prompt import confirm_on_terminal
from operations.rebuild import Target
from operations.restore import (
    ROLLBACK_SUFFIX,
    StateStep,
    check_hostname,
    list_restore_points,
    load_saved_entry,
    render_restore_points,
    restore_from_snapshot,
)
from operations.retry import Clock

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DESCRIPTION = """\
Fast restore of the FreeScout instance from a Lightsail snapshot (the runbook's "Fast-restore").

Without --snapshot: list the restore points of the stack's instance, newest first, and exit
(post-install snapshots <instance>-modules-installed-*, and pre-rebuild ones, labelled).

With --snapshot NAME:
  checks   the host name is the stack's own (module licenses are bound to their domain); the
           snapshot exists and is `available`; no instance holds the name (a restore never deletes
           one: delete it yourself, restore beside it with --instance-name, or --finish an earlier
           restore); the static IP exists; the Pulumi state can be brought in line (the instance is
           in the state, or --state-from gives the copy a rebuild saved) and is not locked
  1. create the instance from the snapshot (zone and bundle from the stack file)
  2. wait until it is running
  3. attach the static IP to it (DNS points at the static IP, so the name follows)
  4. bring the Pulumi state in line: put the instance's entry back if needed, clear the flag a
     failed replacement leaves, refresh the instance, its ports and attachment, keep provisioning
     from re-running on the restored host, protect bit on; then a preview confirms the instance
     is not replaced (when the program itself still differs from the snapshot, e.g. an unreverted
     rebuild change, the output says so; the instance stays protected). With --instance-name (a
     rollback beside a failed instance) the state is left alone and the output says what next.
"""

EPILOG = f"""\
exit codes:
  {exitcodes.OK}   restored (or the snapshots were listed)
  {exitcodes.FAILED}   a step failed: the message says what was created and the next command
  {exitcodes.USAGE}   bad arguments or stack file, unknown snapshot, no usable state copy;
      nothing changed
  {exitcodes.STOPPED}   a check said no (host name, snapshot not available, instance name taken,
      static IP missing, operator declined); nothing changed
  {exitcodes.LOCKED}   another update holds the stack's lock; nothing changed

examples:
  python scripts/restore.py --stack prod
  python scripts/restore.py --stack prod --snapshot raxx-tickets-modules-installed-20260503231628
  python scripts/restore.py --snapshot raxx-tickets-pre-rebuild-20260504T120000Z \\
      --state-from .runs/<run-id>/instance-state.json --yes
"""


@dataclass
class RestoreAdapters:
    lightsail: Lightsail
    state: StateStep | None
    progress: Progress
    clock: Clock


AdapterFactory = Callable[[Target, argparse.Namespace], RestoreAdapters]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/restore.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", default="prod", help="Pulumi stack (default: prod)")
    parser.add_argument("--snapshot", metavar="NAME", help="the snapshot to restore from")
    parser.add_argument(
        "--hostname",
        help="the host name the restored help desk will serve (default: the stack's own)",
    )
    parser.add_argument(
        "--allow-license-activation",
        action="store_true",
        help="allow a host name other than the stack's: burns one domain activation per module",
    )
    parser.add_argument(
        "--state-from",
        type=Path,
        metavar="FILE",
        help="the instance's state entry saved by a rebuild (when the state lost the instance)",
    )
    parser.add_argument(
        "--instance-name",
        metavar="NAME",
        help=f"restore under another name (the runbook's rollback: <instance>{ROLLBACK_SUFFIX}); "
        "the Pulumi state is then left to the operator",
    )
    parser.add_argument(
        "--finish",
        action="store_true",
        help="an earlier restore created the instance and stopped: wait, attach, align the state",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before creating")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if args.snapshot is None and (args.finish or args.state_from or args.instance_name):
        parser.error("--finish, --state-from and --instance-name need --snapshot")
    return args


def ask_on_terminal(question: str) -> bool:
    """Ask on the terminal; without one, refuse and point at --yes."""
    return confirm_on_terminal(question, needs="the restore", hint="rerun with --yes")


def main(
    argv: Sequence[str] | None = None,
    *,
    adapter_factory: AdapterFactory | None = None,
    project_root: Path = PROJECT_ROOT,
    confirm: Callable[[str], bool] | None = None,
) -> int:
    """Run scripts/restore.py; returns an exit code from operations/exitcodes.py."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _run(args, adapter_factory or production_adapters, project_root, confirm)
    except OpsError as error:
        print(error.render(), file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return error.exit_code


def _run(
    args: argparse.Namespace,
    adapter_factory: AdapterFactory,
    project_root: Path,
    confirm: Callable[[str], bool] | None,
) -> int:
    from operations.stack_file import load_target

    target = load_target(project_root, args.stack)
    if args.snapshot is None:
        adapters = adapter_factory(target, args)
        points = list_restore_points(adapters.lightsail, target.instance_name)
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "name": p.snapshot.name,
                            "kind": p.kind,
                            "state": p.snapshot.state,
                            "created_at": p.snapshot.created_at,
                        }
                        for p in points
                    ]
                )
            )
        else:
            print(render_restore_points(points, target))
        return exitcodes.OK
    warning = check_hostname(
        target, args.hostname, allow_license_activation=args.allow_license_activation
    )
    if args.state_from is not None:
        load_saved_entry(args.state_from, args.stack)  # unusable copy: stop before any adapter
    adapters = adapter_factory(target, args)
    if warning:
        adapters.progress.say(warning)
    ask = None if args.yes else (confirm or ask_on_terminal)
    result = restore_from_snapshot(
        target,
        args.snapshot,
        lightsail=adapters.lightsail,
        state=adapters.state,
        progress=adapters.progress,
        clock=adapters.clock,
        new_instance_name=args.instance_name,
        finish_existing=args.finish,
        confirm=ask,
    )
    print(result.render())
    if warning:
        print(warning)
    if args.json:
        print(json.dumps(result.as_dict()))
    return exitcodes.OK


def production_adapters(target: Target, args: argparse.Namespace) -> RestoreAdapters:
    """The real adapters: boto3 Lightsail in the stack's region, the project's stack."""
    import boto3

    from operations.engine import for_project
    from operations.lightsail import BotoLightsail
    from operations.restore import PulumiStateStep
    from operations.stack_file import config_value
    from operations.wiring import INSTANCE_RESOURCE

    region = str(config_value(PROJECT_ROOT, target.stack, "aws:region", "us-east-1"))
    progress = Progress()
    clock = Clock()
    lightsail = BotoLightsail(
        boto3.client("lightsail", region_name=region), clock, on_retry=progress.say
    )
    state: StateStep | None = None
    if args.snapshot is not None and args.instance_name in (None, target.instance_name):
        engine = for_project(
            PROJECT_ROOT,
            stack_name=target.stack,
            instance=INSTANCE_RESOURCE,
            on_progress=progress.say,
        )
        saved = load_saved_entry(args.state_from, target.stack) if args.state_from else None
        state = PulumiStateStep(engine, saved=saved, on_progress=progress.say)
    return RestoreAdapters(lightsail=lightsail, state=state, progress=progress, clock=clock)
