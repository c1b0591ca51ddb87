"""Create the stand-in stack in a temporary folder: local file backend, passphrase secrets.

Never a network backend: the backend URL is `file://<root>/backend`, PULUMI_HOME is
`<root>/home`, and the update check and plugin downloads are switched off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pulumi import automation as auto

from tests.engine_project.program import PROJECT, program

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "standin-engine-tests"  # protects only throwaway test state


@dataclass(frozen=True)
class StandinPaths:
    root: Path

    @property
    def backend(self) -> Path:
        return self.root / "backend"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def cloud(self) -> Path:
        return self.root / "cloud"


def engine_env(paths: StandinPaths) -> dict[str, str]:
    """Environment for the CLI and the plugins it starts (all local, nothing phones home)."""
    return {
        "PULUMI_BACKEND_URL": f"file://{paths.backend}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_HOME": str(paths.home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The dynamic-provider plugin runs this Python, which must import the stand-in's
        # providers (they are pickled by reference to this package).
        "PULUMI_PYTHON_CMD": sys.executable,
        "PYTHONPATH": os.pathsep.join(
            p for p in [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")] if p
        ),
    }


def standin_stack(
    root: Path,
    pulumi_cli: str,
    stack_name: str = "dev",
    program: Callable[[], None] = program,
) -> auto.Stack:
    """The stand-in stack under `root` (created, or selected when it exists).

    `program` defaults to the stand-in program; the restore tests pass a variant of it.
    """
    paths = StandinPaths(root)
    for folder in (paths.backend, paths.home, paths.work, paths.cloud):
        folder.mkdir(parents=True, exist_ok=True)
    command = auto.PulumiCommand(root=str(Path(pulumi_cli).resolve().parent.parent))
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(paths.work),
        pulumi_home=str(paths.home),
        pulumi_command=command,
        env_vars=engine_env(paths),
        secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(
            name=PROJECT,
            runtime="python",
            backend=auto.ProjectBackend(url=f"file://{paths.backend}"),
        ),
    )
    stack = auto.create_or_select_stack(
        stack_name=stack_name, project_name=PROJECT, program=program, opts=opts
    )
    stack.set_config("standin:state_dir", auto.ConfigValue(str(paths.cloud)))
    return stack
