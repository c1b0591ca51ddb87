"""Shared test helpers.

`need(...)` is the one way a test reports a missing local dependency (the engine, sshd, MariaDB,
shellcheck): under CI=true it fails the test, elsewhere it skips with the reason and the fix.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENGINE_BIN = PROJECT_ROOT / ".engine" / "bin"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(condition: bool, what: str, fix: str = "run 'sh tools/setup.sh'") -> None:
    """Fail (under CI=true) or skip (elsewhere) when a local dependency is missing."""
    if condition:
        return
    message = f"{what} is missing: {fix}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def find_tool(name: str) -> str | None:
    """A tool from the project's engine folder first, then PATH, then the sbin folders."""
    candidate = ENGINE_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return shutil.which(name, path=path)


@pytest.fixture
def pulumi_cli() -> str:
    """Path of the Pulumi CLI (built by set-up into .engine/bin, or on PATH)."""
    path = find_tool("pulumi")
    need(path is not None, "the Pulumi CLI", "run 'sh tools/setup.sh' (it builds it with Go)")
    assert path is not None
    return path


@pytest.fixture
def stubbed():
    """A boto3 Lightsail client under botocore's Stubber, and the stubber.

    Every request is checked against botocore's real API model; the Stubber answers every call
    with the responses a test queues, so nothing leaves the process (the credentials are dummies).
    What it does not prove: Lightsail's behaviour and timing beyond the answers queued.
    """
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "lightsail",
        region_name="us-east-1",
        aws_access_key_id="AKIDTESTTESTTEST",
        aws_secret_access_key="test-secret-not-real",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()
