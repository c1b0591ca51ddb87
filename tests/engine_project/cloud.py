"""The stand-in "cloud": a JSON file in a state folder, shared by the dynamic providers.

The dynamic providers run in the engine's provider process (pulumi-resource-pulumi-python), not in
the test process; they find the file through the `state_dir` input every stand-in resource carries.
Every create and delete is appended to an ordered log, so tests can assert that the instance was
deleted before its replacement was created and that protected resources kept their ids.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CLOUD_FILE = "cloud.json"
LOCK_FILE = "cloud.lock"
SSH_FAILURES_FILE = "ssh-failures.count"


def empty() -> dict[str, Any]:
    return {"next_id": 1, "resources": {}, "log": []}


def read(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The cloud as it is now (an empty one when nothing was ever created)."""
    path = Path(state_dir) / CLOUD_FILE
    if not path.exists():
        return empty()
    return json.loads(path.read_text(encoding="utf-8"))


@contextmanager
def transaction(state_dir: str) -> Iterator[dict[str, Any]]:
    """Read, change and write the cloud under a file lock (the engine runs steps in parallel)."""
    folder = Path(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = read(folder)
            yield data
            tmp = folder / (CLOUD_FILE + ".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, folder / CLOUD_FILE)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def take_ssh_failure(state_dir: str, limit: int) -> bool:
    """True (and count it) while fewer than `limit` injected SSH failures have happened."""
    with transaction(state_dir):
        path = Path(state_dir) / SSH_FAILURES_FILE
        done = int(path.read_text(encoding="utf-8")) if path.exists() else 0
        if done >= limit:
            return False
        path.write_text(str(done + 1), encoding="utf-8")
        return True


def ssh_failures(state_dir: str | os.PathLike[str]) -> int:
    """How many injected SSH failures have happened so far."""
    path = Path(state_dir) / SSH_FAILURES_FILE
    return int(path.read_text(encoding="utf-8")) if path.exists() else 0
