"""Copy the stack's secrets from the Infisical vault into Pulumi config secrets.

Thin CLI over operations.vault and operations.stack_config; see
`python scripts/sync_secrets.py --help`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from operations import exitcodes
from operations.errors import OpsError
from operations.stack_config import Outcome, StackConfig, apply_secrets
from operations.vault import SETTINGS_HELP, VaultClient, VaultSettings, fetch_all, load_mapping

PROJECT_DIR = Path(__file__).resolve().parent.parent

EPILOG = f"""\
environment (all required; never put them on the command line):
{SETTINGS_HELP}
  PULUMI_CONFIG_PASSPHRASE the stack's passphrase (or PULUMI_CONFIG_PASSPHRASE_FILE), and the
                           backend login (pulumi login, PULUMI_BACKEND_URL or PULUMI_ACCESS_TOKEN)

what it does:
  logs in to the vault, fetches EVERY mapped secret first (a failure changes nothing), then sets
  each changed one with `pulumi config set --secret` (value on standard input, never in an
  argument), reads the keys back, and prints one line per key: KEY: set | unchanged.
  No value is ever printed or logged. The vault credentials are not passed to pulumi.

exit codes:
  {exitcodes.OK:<3} every key is set (or unchanged)
  {exitcodes.FAILED:<3} the vault or pulumi failed (the message names the secret or key); with a
      pulumi failure midway, the keys printed as set before it are set
  {exitcodes.USAGE:<3} missing settings, a bad mapping file, an unknown --only key, no such stack
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sync_secrets.py",
        description="Fetch the stack's secrets from the Infisical vault and set them as Pulumi "
        "config secrets of the stack.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", default="prod", help="the stack to set (default: prod)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="fetch and compare, print what would be set, change nothing",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="KEY",
        help="only these config keys (as in the mapping file), e.g. freescout:license_tags",
    )
    parser.add_argument(
        "--mapping",
        type=Path,
        default=PROJECT_DIR / "vault-secrets.toml",
        help="the mapping file (default: vault-secrets.toml in the repository)",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_DIR,
        help="the folder holding Pulumi.yaml (default: the repository)",
    )
    parser.add_argument("--pulumi", help="the Pulumi CLI (default: pulumi on PATH)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def default_pulumi() -> str:
    """pulumi on PATH, else the one tools/setup.sh builds into .engine/bin."""
    found = shutil.which("pulumi")
    return found or str(PROJECT_DIR / ".engine" / "bin" / "pulumi")


def run(args: argparse.Namespace) -> int:
    """Fetch all, then set; progress on stderr, one `KEY: status` line per key on stdout."""
    mapping = load_mapping(args.mapping)
    sources = mapping.select(args.only)
    settings = VaultSettings.from_env(os.environ, environment=mapping.environment)
    config = StackConfig(
        args.pulumi or default_pulumi(),
        cwd=args.project_dir,
        env=os.environ,
        stack=args.stack,
    )
    # The CLI, the backend login, the stack and its passphrase are checked before the vault is
    # asked for anything: a secret fetched for nothing is a secret exposed for nothing.
    print(f"pulumi: checking stack {args.stack}", file=sys.stderr)
    config.entries(show_secrets=True)
    client = VaultClient(settings)
    print(f"vault: logging in to {settings.host}", file=sys.stderr)
    client.login()
    values = fetch_all(client, sources)
    print(f"vault: fetched {len(values)} secrets; updating stack {args.stack}", file=sys.stderr)

    def report(outcome: Outcome) -> None:
        print(f"{outcome.key}: {outcome.status}", flush=True)

    apply_secrets(config, sources, values, dry_run=args.dry_run, on_outcome=report)
    return exitcodes.OK


def main(argv: list[str] | None = None) -> int:
    """Entry point: typed errors become a message and their exit code."""
    args = parse_args(argv)
    try:
        return run(args)
    except OpsError as error:
        if args.debug:
            raise
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: keys printed as set are set; rerun to finish", file=sys.stderr)
        return exitcodes.FAILED


if __name__ == "__main__":
    sys.exit(main())
