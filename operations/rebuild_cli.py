"""Command line of scripts/rebuild.py: parse arguments, wire adapters, run, map errors to codes."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from operations import exitcodes
from operations.errors import OpsError, UsageError
from operations.journal import Journal, JournalStore, RunState
from operations.prompt import confirm_on_terminal
from operations.rebuild import Adapters, Options, Outcome, Rebuild, Target

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DESCRIPTION = """\
Rebuild the FreeScout instance: destroy and recreate it, guarded, snapshotted and verified.

Phases (each recorded in the run journal .runs/<run-id>/journal.json):
  1. pre-flight  stack file sane; instance and static IP exist; host keys pinned from Lightsail;
                 data check over SSH (stops when conversations > 0 or users > 1, or when the
                 count cannot be read, unless --backup-taken)
  2. plan        preview with the instance unprotected, judged by the plan guard: must say
                 "rebuild" (anything forbidden, or no replacement at all, stops here)
  3. snapshot    <instance>-pre-rebuild-<UTC time>, waited for until available (runs in
                 parallel with 1-2)
  4. replace     protect off, `pulumi up`; a transient SSH failure of provisioning is retried
  5. re-protect  protect on, `pulumi up`, protect bit confirmed in the state, preview: no changes
  6. verify      cloud-init done, https://<host>/ answers 200 or 302, every module Active
  7. post-install snapshot, then the postmortem in docs/ops/postmortems/

Whatever fails, the instance ends protected and the tool prints where things stand and the next
command. --dry-run runs 1-2 only and prints what 3-7 would do.
"""

EPILOG = f"""\
exit codes (operations/exitcodes.py):
  {exitcodes.OK}  OK        rebuild finished (or dry run passed)
  {exitcodes.FAILED}  FAILED    a phase failed; the instance is protected; resume or roll back
                as printed
  {exitcodes.USAGE}  USAGE     bad arguments or stack configuration; nothing changed
  {exitcodes.STOPPED}  STOPPED   a check said no (data on the host, plan not a rebuild, forbidden
                plan, operator declined); nothing changed
  {exitcodes.LOCKED}  LOCKED    another update holds the stack's lock; nothing changed
  {exitcodes.UNSAFE}  UNSAFE    failed AND the instance could not be confirmed protected: act now

examples:
  python scripts/rebuild.py --stack prod --dry-run
  python scripts/rebuild.py --stack prod --trigger "blueprint upgrade"
  python scripts/rebuild.py --stack prod --resume            # the latest unfinished run
"""

AdapterFactory = Callable[[Target, argparse.Namespace], Adapters]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/rebuild.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", default="prod", help="Pulumi stack (default: prod)")
    parser.add_argument("--yes", action="store_true", help="do not ask before the replacement")
    parser.add_argument("--dry-run", action="store_true", help="run phases 1-2 only")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="RUN",
        help="continue an unfinished run (default: the latest one of the stack)",
    )
    parser.add_argument("--trigger", default="", help="why this rebuild happens (postmortem)")
    parser.add_argument(
        "--backup-taken",
        action="store_true",
        help="the database was dumped: let a stack with real tickets pass the data check",
    )
    parser.add_argument(
        "--rollback-on-failure",
        action="store_true",
        help="when verification fails, restore from the run's pre-rebuild snapshot",
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=PROJECT_ROOT / ".runs", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--postmortem-dir",
        type=Path,
        default=PROJECT_ROOT / "docs" / "ops" / "postmortems",
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if args.dry_run and args.resume:
        parser.error("--dry-run and --resume do not go together: a dry run changes nothing")
    return args


def ask_on_terminal(question: str) -> bool:
    """Ask on the terminal; without one, refuse (the caller tells the operator about --yes)."""
    return confirm_on_terminal(
        question,
        needs="the replacement",
        hint="rerun with --yes (and --resume to continue this run)",
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    adapter_factory: AdapterFactory | None = None,
    project_root: Path = PROJECT_ROOT,
) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        outcome = _run(args, adapter_factory, project_root)
    except OpsError as error:
        print(error.render(), file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        if args.json:
            print(
                json.dumps(
                    {"exit_code": error.exit_code, "state": "not-started", "error": error.message}
                )
            )
        return error.exit_code
    stream = sys.stdout if outcome.exit_code == exitcodes.OK else sys.stderr
    print(outcome.message, file=stream)
    if args.json:
        print(
            json.dumps(
                {
                    "exit_code": outcome.exit_code,
                    "state": outcome.state.value,
                    "postmortem": str(outcome.postmortem) if outcome.postmortem else None,
                }
            )
        )
    return outcome.exit_code


def _journal_for(args: argparse.Namespace, store: JournalStore) -> Journal:
    """The journal `--resume [RUN]` names: the latest unfinished run of the stack by default."""
    journal = (
        store.latest_resumable(args.stack) if args.resume == "latest" else store.load(args.resume)
    )
    if journal.stack != args.stack:
        raise UsageError(
            f"run {journal.run_id} belongs to stack {journal.stack!r}, not {args.stack!r}",
            hint=f"rerun with --stack {journal.stack}",
        )
    if journal.state is RunState.SUCCEEDED:
        raise UsageError(f"run {journal.run_id} already succeeded; nothing to resume")
    if journal.state is RunState.DRY_RUN or journal.facts.get("dry_run"):
        raise UsageError(
            f"run {journal.run_id} was a dry run; a dry run is never resumed",
            hint=f"start a real run: python scripts/rebuild.py --stack {args.stack}",
        )
    return journal


def _run(
    args: argparse.Namespace, adapter_factory: AdapterFactory | None, project_root: Path
) -> Outcome:
    from operations.stack_file import load_target

    target = load_target(project_root, args.stack)
    store = JournalStore(args.runs_dir)
    journal = _journal_for(args, store) if args.resume else None
    if adapter_factory is None:
        from operations.wiring import production_adapters

        adapter_factory = production_adapters
    try:
        adapters = adapter_factory(target, args)
    except UsageError:
        raise
    except OpsError as error:
        # Nothing has been changed yet: the environment is not ready (credentials, network).
        raise UsageError(
            f"{error.message} (before the run started: nothing was changed)",
            cause=error.cause,
            hint=error.hint,
        ) from error
    if journal is None:
        journal = store.new(args.stack)
    if not args.yes and not args.dry_run:
        adapters.confirm = ask_on_terminal
    options = Options(
        dry_run=args.dry_run,
        backup_taken=args.backup_taken,
        trigger=args.trigger or str(journal.facts.get("trigger") or ""),
        rollback_on_failure=args.rollback_on_failure,
        postmortem_dir=args.postmortem_dir,
    )
    adapters.progress.say(f"run {journal.run_id}: journal {journal.path}")
    return Rebuild(target, adapters, journal, options).run()
