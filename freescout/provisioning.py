"""Provisioning over SSH: the chain of steps that turns a bootstrapped host into the help desk.

Order (each step depends on the one before): wait-for-ssh, wait-for-cloud-init, configure,
pre-install snapshot, one step per enabled module in dependency order, cache clear, post-install
snapshot.

- wait-for-ssh is a `command:local:Command`: on the operator's machine, with the interpreter
  that runs this program, `python -m freescout.wait_for_ssh` waits for the static IP's port 22
  to answer with an SSH banner, pausing between attempts under a deadline (F6). The provider's
  own dial retries do not pause, so a host that refuses connections would burn them at once.
- Remote steps are `command:remote:Command` run as root under dash (freescout/templates/).
- The two snapshot steps are `command:local:Command`: they run `aws lightsail
  create-instance-snapshot` on the operator's machine with the operator's credentials (the
  instance holds no AWS credential) and wait until the snapshot is `available`.
- Every step's `triggers` carry the instance's identity (ARN and creation time), so a new
  instance re-runs every step; `depends_on` alone would not.
- Secrets reach the host on each command's stdin only: never in arguments, environment or
  user_data. A rotated password or license changes a step's stdin (an update of that step),
  never an input of the instance.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_command as command

from freescout import scripts, wait_for_ssh
from freescout.host import Host
from freescout.modules import Module
from freescout.passwords import Secrets
from freescout.settings import Settings

# The command provider retries a failed SSH dial up to DIAL_ERROR_LIMIT times, each attempt
# waiting up to PER_DIAL_TIMEOUT seconds, with no pause in between (F6). 40 x 15 s covers about
# ten minutes of a host that does not answer yet (sshd restarting during cloud-init). A refused
# connection fails fast, so those attempts go quickly: the rebuild driver retries a failed
# provisioning step after a pause for that case.
DIAL_ERROR_LIMIT = 40
PER_DIAL_TIMEOUT = 15
SNAPSHOT_DEADLINE_SECONDS = 1800
SSH_PORT = 22
# A fresh Lightsail instance answers on port 22 within a few minutes; 15 leaves room for a slow
# boot without hanging a run for good.
WAIT_FOR_SSH_DEADLINE_SECONDS = 900


class Provisioning(pulumi.ComponentResource):
    """The provisioning chain for one host."""

    def __init__(self, name: str, settings: Settings, host: Host, secrets: Secrets,
                 private_key: pulumi.Input[str], after: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("raxx:freescout:Provisioning", name, None, opts)
        self._base = name
        self.connection = command.remote.ConnectionArgs(
            host=host.static_ip.ip_address,
            user=settings.ssh_user,
            private_key=pulumi.Output.secret(private_key),
            dial_error_limit=DIAL_ERROR_LIMIT,
            per_dial_timeout=PER_DIAL_TIMEOUT,
        )
        self.triggers = [host.instance.arn, host.instance.created_at]
        self.steps: list[pulumi.CustomResource] = []
        first_after = [host.attachment, host.ports, *after]

        self.wait_for_ssh = self._wait_for_ssh_step(host, after=first_after)
        self.wait = self._remote_step("wait-for-cloud-init", scripts.remote_command(
            "wait_for_cloud_init"))
        self.configure = self._remote_step(
            "configure",
            scripts.remote_command("configure", settings.hostname, settings.admin_email,
                                   scripts.php("set_admin")),
            stdin=_lines(secrets.result("db_user"), secrets.result("db_root"),
                         secrets.result("admin"), settings.mail_token or ""),
        )
        self.pre_install_snapshot = self._snapshot_step(settings, "pre-install")
        self.module_steps: dict[str, command.remote.Command] = {}
        for module in settings.modules:
            self.module_steps[module.alias] = self._module_step(settings, module)
        self.cache_clear = self._remote_step("cache-clear", scripts.remote_command("cache_clear"))
        self.post_install_snapshot = self._snapshot_step(settings, "post-install")
        self.register_outputs({
            "steps": [step.urn for step in self.steps],
            "post_install_snapshot": self.post_install_snapshot.stdout,
        })

    def _after_previous(self, extra: Sequence[pulumi.Resource] = ()) -> list[pulumi.Resource]:
        return [*extra, *self.steps[-1:]]

    def _remote_step(self, step: str, create: str, *, stdin: pulumi.Input[str] | None = None,
                after: Sequence[pulumi.Resource] = ()) -> command.remote.Command:
        resource = command.remote.Command(
            f"{self._base}-{step}",
            connection=self.connection,
            create=create,
            stdin=stdin,
            triggers=self.triggers,
            opts=pulumi.ResourceOptions(parent=self, protect=False,
                                        depends_on=self._after_previous(after)),
        )
        self.steps.append(resource)
        return resource

    def _module_step(self, settings: Settings, module: Module) -> command.remote.Command:
        return self._remote_step(
            f"module-{module.alias}",
            scripts.remote_command("module_install", module.alias, scripts.php("module_activate")),
            stdin=_lines(settings.license_for(module)),
        )

    def _wait_for_ssh_step(self, host: Host,
                           after: Sequence[pulumi.Resource]) -> command.local.Command:
        create = pulumi.Output.from_input(host.static_ip.ip_address).apply(
            lambda address: scripts.python_module_command(
                wait_for_ssh.__name__, address, "--port", str(SSH_PORT),
                "--deadline", str(WAIT_FOR_SSH_DEADLINE_SECONDS)))
        resource = command.local.Command(
            f"{self._base}-wait-for-ssh",
            create=create,
            triggers=self.triggers,
            opts=pulumi.ResourceOptions(parent=self, protect=False,
                                        depends_on=self._after_previous(after)),
        )
        self.steps.append(resource)
        return resource

    def _snapshot_step(self, settings: Settings, label: str) -> command.local.Command:
        resource = command.local.Command(
            f"{self._base}-{label}-snapshot",
            create=scripts.local_command("snapshot", settings.instance_name, label,
                                         settings.region, str(SNAPSHOT_DEADLINE_SECONDS)),
            triggers=self.triggers,
            opts=pulumi.ResourceOptions(parent=self, protect=False,
                                        depends_on=self._after_previous()),
        )
        self.steps.append(resource)
        return resource


def _lines(*values: pulumi.Input[str]) -> pulumi.Output[str]:
    """Values joined one a line (each line ends in a newline), as a secret."""
    joined = pulumi.Output.all(*values).apply(lambda vs: "".join(f"{v}\n" for v in vs))
    return pulumi.Output.secret(joined)
