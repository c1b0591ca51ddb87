"""Regenerate tests/fixtures/engine/: real `pulumi preview --json` output and engine event logs.

Usage (from the project root): .venv/bin/python -m tools.engine.make_fixtures [--out DIR]

Runs the stand-in stack (tests/engine_project) with the real CLI in a temporary folder (file
backend, passphrase secrets) and saves, per scenario, the bytes the engine printed:
  <scenario>.preview.json   stdout of `pulumi preview --json`
  <scenario>.events.jsonl   the file `pulumi preview --event-log FILE` wrote
Both come from one CLI run. The Python Automation API streams events over gRPC and parses them,
so this script starts the CLI itself, serving the inline program with the SDK's language server
exactly as `Stack.preview` does (`--client`, `--exec-kind auto.inline`).
Only the temporary folder's path is scrubbed (to `/tmp/standin`); nothing else is edited.

Scenarios: protected-replace (the preview fails on the protection error), unprotected-replace,
no-changes, static-ip-replace.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent import futures
from pathlib import Path

import grpc
from pulumi import automation as auto
from pulumi.automation._server import LanguageServer  # what Stack.preview serves, verbatim
from pulumi.runtime.proto import language_pb2_grpc

from tests.conftest import find_tool
from tests.engine_project.program import program
from tests.engine_project.stack import standin_stack

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "engine"
SCRUBBED_ROOT = "/tmp/standin"


def preview_cli(stack: auto.Stack, event_log: Path) -> tuple[str, int]:
    """`pulumi preview --json --event-log FILE` of the inline program: (stdout bytes, exit code)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageServer(program), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    workspace = stack.workspace
    cli = str(Path(workspace.pulumi_command.command))
    args = [
        cli, "--non-interactive", "preview", "--json", "--event-log", str(event_log),
        "--client", f"127.0.0.1:{port}", "--exec-kind", "auto.inline", "--stack", stack.name,
    ]  # fmt: skip
    env = {
        **os.environ,
        **workspace.env_vars,
        # The CLI registers --event-log only with PULUMI_DEBUG_COMMANDS set (the Automation API
        # sets both of these for every command).
        "PULUMI_DEBUG_COMMANDS": "true",
        "PULUMI_AUTOMATION_API": "true",
    }
    if workspace.pulumi_home:
        env["PULUMI_HOME"] = workspace.pulumi_home
    try:
        done = subprocess.run(
            args, cwd=workspace.work_dir, env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        server.stop(0)
    if not event_log.exists():
        raise SystemExit(f"fixtures: the CLI wrote no event log: {done.stderr.strip()}")
    return done.stdout, done.returncode


def save(out: Path, scenario: str, stdout: str, event_log: Path, root: Path) -> None:
    def scrub(text: str) -> str:
        return text.replace(str(root), SCRUBBED_ROOT)

    (out / f"{scenario}.preview.json").write_text(scrub(stdout), encoding="utf-8")
    (out / f"{scenario}.events.jsonl").write_text(
        scrub(event_log.read_text(encoding="utf-8")), encoding="utf-8"
    )
    print(f"fixtures: {scenario}: {len(stdout)} bytes of preview, "
          f"{len(event_log.read_text().splitlines())} events")  # fmt: skip


def make(out: Path) -> None:
    cli = find_tool("pulumi")
    if cli is None:
        sys.exit("fixtures: no Pulumi CLI: run 'sh tools/engine/build.sh'")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="standin-") as tmp:
        root = Path(tmp)
        stack = standin_stack(root, cli)
        stack.up()

        def scenario(name: str, expect_failure: bool) -> None:
            log = root / f"{name}.events.jsonl"
            stdout, code = preview_cli(stack, log)
            if (code != 0) != expect_failure:
                raise SystemExit(f"fixtures: {name}: preview exit code {code} was not expected")
            save(out, name, stdout, log, root)

        stack.set_config("freescout:user_data_version", auto.ConfigValue("2"))
        scenario("protected-replace", expect_failure=True)
        stack.set_config("freescout:protect", auto.ConfigValue("false"))
        scenario("unprotected-replace", expect_failure=False)
        stack.up()
        stack.set_config("freescout:protect", auto.ConfigValue("true"))
        stack.up()
        scenario("no-changes", expect_failure=False)
        stack.set_config("standin:replace_static_ip", auto.ConfigValue("true"))
        scenario("static-ip-replace", expect_failure=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIXTURES, help="folder for the fixtures")
    make(parser.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
