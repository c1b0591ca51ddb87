"""Production wiring: the real adapters for a stack, from its stack file and the environment.

AWS credentials come from the usual boto3 chain (environment, profile, SSO); the Pulumi backend
and passphrase from the operator's environment. Nothing here holds a secret.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from operations.errors import UsageError
from operations.progress import Progress
from operations.rebuild import Adapters, Target
from operations.retry import Clock
from operations.stack_file import config_value

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_RESOURCE = "freescout-instance"  # the instance's logical name in the program
KNOWN_HOSTS = PROJECT_ROOT / ".runs" / "known_hosts"  # the tool's own, never ~/.ssh/known_hosts


def project_fingerprint(root: Path, stack: str) -> str:
    """A digest of the program and the stack file, without the protect flag the driver flips."""
    import hashlib

    import yaml

    digest = hashlib.sha256()
    files = [root / "Pulumi.yaml", root / "__main__.py"]
    files += sorted(
        p for p in (root / "freescout").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    stack_file = root / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
    if isinstance(document, dict) and isinstance(document.get("config"), dict):
        document["config"].pop("freescout:protect", None)
    digest.update(repr(document).encode())
    return digest.hexdigest()


def production_adapters(target: Target, args: argparse.Namespace) -> Adapters:
    import boto3

    from operations.engine import for_project
    from operations.host import SshHost
    from operations.http_probe import UrllibProbe
    from operations.lightsail import BotoLightsail
    from operations.ssh import OpenSshShell

    stack = target.stack
    region = str(config_value(PROJECT_ROOT, stack, "aws:region", "us-east-1"))
    ssh_user = str(config_value(PROJECT_ROOT, stack, "freescout:ssh_user", "admin"))
    key_setting = config_value(PROJECT_ROOT, stack, "freescout:ssh_private_key_path")
    if not key_setting:
        raise UsageError(
            "no SSH key configured for the stack",
            hint=f"pulumi config set --stack {stack} freescout:ssh_private_key_path <path>",
        )
    key_path = Path(str(key_setting)).expanduser()
    if not key_path.is_file():
        raise UsageError(
            f"SSH private key {key_path} does not exist",
            hint="put the Lightsail key pair's private key there (chmod 600), or "
            f"pulumi config set --stack {stack} freescout:ssh_private_key_path <path>",
        )
    progress = Progress()
    clock = Clock()
    # The engine first: a missing CLI or backend login is found before any AWS call.
    engine = for_project(
        PROJECT_ROOT, stack_name=stack, instance=INSTANCE_RESOURCE, on_progress=progress.say
    )
    lightsail = BotoLightsail(
        boto3.client("lightsail", region_name=region), clock, on_retry=progress.say
    )
    static_ip = lightsail.get_static_ip(target.static_ip_name)
    if static_ip is None or not static_ip.ip_address:
        raise UsageError(
            f"static IP {target.static_ip_name} not found in {region}",
            hint="check the region and the AWS credentials in this shell",
        )
    KNOWN_HOSTS.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shell = OpenSshShell(
        host=static_ip.ip_address,
        user=ssh_user,
        identity_file=key_path,
        known_hosts=KNOWN_HOSTS,
        clock=clock,
        on_progress=progress.say,
    )

    def rollback(snapshot_name: str) -> str:
        from operations.restore import (
            PulumiStateStep,
            name_for_rollback,
            restore_from_snapshot,
        )

        # The failed instance still holds the name: restore beside it (the runbook's
        # `<instance>-rollback`), leaving the state to the operator; else under the name.
        new_name = name_for_rollback(target, lightsail)
        result = restore_from_snapshot(
            target,
            snapshot_name,
            lightsail=lightsail,
            state=PulumiStateStep(engine) if new_name is None else None,
            progress=progress,
            clock=clock,
            new_instance_name=new_name,
        )
        return result.render()

    def save_instance_state(path: Path) -> object:
        from operations.restore import save_instance_state as save

        return save(engine, path)

    return Adapters(
        fingerprint=lambda: project_fingerprint(PROJECT_ROOT, stack),
        engine=engine,
        lightsail=lightsail,
        host=SshHost(lightsail=lightsail, shell=shell, progress=progress, clock=clock),
        http=UrllibProbe(),
        progress=progress,
        clock=clock,
        save_instance_state=save_instance_state,
        rollback=rollback,
    )
