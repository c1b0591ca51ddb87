"""Judge a Pulumi plan for a pull request: safe, needs the rebuild cycle, or forbidden.

Thin CLI over operations.guard; see `python scripts/pr_check.py --help`.
"""

from __future__ import annotations

import argparse
import sys

from operations import exitcodes, guard
from operations.errors import OpsError

EPILOG = f"""\
input:
  the output of `pulumi preview --json > plan.json`, or an engine event log
  (`pulumi preview --event-log plan.jsonl`, or what the Automation API writes); `-` reads stdin.
  Plain `preview --json` leaves out replacement steps, so it cannot show a resource deleted
  because it left the program while the instance is replaced: prefer the event log, or add
  `--show-replacement-steps` to the preview.

exit codes:
  {exitcodes.OK:<3} safe: nothing that must survive is deleted or replaced
  {exitcodes.NEEDS_REBUILD:<3} needs the rebuild cycle: the instance is replaced
      (run `python scripts/rebuild.py --stack prod`, not `pulumi up`)
  {exitcodes.FORBIDDEN:<3} forbidden: a static IP, DNS record, SSM parameter or generated password
      would be deleted or replaced, the instance/ports/attachment deleted outright,
      a resource of a type the guard does not know deleted or replaced, or the preview failed
  {exitcodes.USAGE:<3} unreadable input (missing, empty, not JSON, JSON of another shape or mixing
      both forms, or the log of a preview that did not finish: no summaryEvent, or canceled)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pr_check.py",
        description=(
            "Read a Pulumi plan and print the plan guard's verdict with each offending resource "
            "URN and the reason; the exit code is the verdict."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the plan file, or - for standard input")
    parser.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text for a terminal, markdown for a pull-request comment (default: text)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print the verdict on stdout and return its exit code (2 with a message on bad input)."""
    args = parse_args(argv)
    try:
        stdin_text = sys.stdin.read() if args.file == "-" else None
        report = guard.judge_plan(guard.read_plan_file(args.file, stdin_text))
    except OpsError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    sys.stdout.write(guard.render(report, args.format))
    return int(report.verdict)


if __name__ == "__main__":
    sys.exit(main())
