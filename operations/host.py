"""The instance as the rebuild driver sees it: OpenSSH with host keys pinned from Lightsail.

Glue only: each method is one call into operations.ssh / operations.host_checks, with the
deadlines of a real rebuild and progress lines for every long wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from operations import host_checks
from operations.errors import UsageError
from operations.lightsail import BotoLightsail
from operations.progress import Progress
from operations.retry import Clock
from operations.ssh import OpenSshShell


@dataclass(frozen=True)
class HostDeadlines:
    host_keys: float = 600  # a new instance reports its host keys once sshd has run
    reachable: float = 900
    cloud_init: float = 1800  # the runbook's bootstrap takes 3-8 minutes; leave room


class SshHost:
    """Implements operations.rebuild.Host over one OpenSshShell to the static IP."""

    def __init__(
        self,
        *,
        lightsail: BotoLightsail,
        shell: OpenSshShell,
        progress: Progress,
        clock: Clock | None = None,
        deadlines: HostDeadlines = HostDeadlines(),
    ):
        self.lightsail = lightsail
        self.shell = shell
        self.progress = progress
        self.clock = clock or Clock()
        self.deadlines = deadlines

    def trust_instance(self, instance_name: str) -> None:
        """Pin the host keys Lightsail reports for the instance (the old host's are forgotten)."""
        instance = self.lightsail.get_instance(instance_name)
        if instance and instance.username and instance.username != self.shell.user:
            raise UsageError(
                f"the stack's SSH user is {self.shell.user!r} but Lightsail reports "
                f"{instance.username!r} for {instance_name}",
                hint=f"pulumi config set freescout:ssh_user {instance.username}",
            )
        keys = self.lightsail.wait_host_keys(
            instance_name,
            deadline_seconds=self.deadlines.host_keys,
            on_wait=lambda elapsed, _pause: self.progress.waiting(
                f"host keys of {instance_name}", elapsed
            ),
        )
        self.shell.pin_host_keys(keys)
        self.progress.say(f"ssh: pinned {len(keys)} host key(s) of {instance_name}")

    def wait_reachable(self) -> None:
        self.shell.wait_until_reachable(self.deadlines.reachable, on_progress=self.progress.say)

    def data_check(self) -> host_checks.DataCheck:
        return host_checks.check_data(self.shell)

    def wait_cloud_init_done(self) -> str:
        status = host_checks.wait_cloud_init(
            self.shell,
            deadline_seconds=self.deadlines.cloud_init,
            clock=self.clock,
            on_progress=self.progress.say,
        )
        return status.describe()

    def require_modules_active(self, aliases: Sequence[str]) -> str:
        if not aliases:
            return "no modules configured"
        return host_checks.require_modules_active(self.shell, list(aliases)).describe()
