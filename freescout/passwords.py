"""Generated passwords, kept as SecureString parameters in SSM."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from freescout.settings import Settings

# role -> what the password is for (the SSM parameter's description).
ROLES: dict[str, str] = {
    "db_user": "FreeScout MariaDB user 'freescout'",
    "db_root": "MariaDB root",
    "admin": "FreeScout admin user",
}


def parameter_name(stack: str, role: str) -> str:
    """The SSM parameter path of one password."""
    return f"/freescout/{stack}/{role}_password"


class Secrets(pulumi.ComponentResource):
    """Three generated passwords and the SecureString parameters that hold them.

    Nothing about the instance is an input here, so a rebuild never regenerates a password;
    the random provider keeps each value in the state. Letters and digits only, so the
    configure script can place them in SQL and .env lines without quoting.
    """

    def __init__(self, name: str, settings: Settings,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("raxx:freescout:Secrets", name, None, opts)
        self.passwords: dict[str, random.RandomPassword] = {}
        self.parameters: dict[str, aws.ssm.Parameter] = {}
        for role, purpose in ROLES.items():
            password = random.RandomPassword(
                f"{name}-{role}-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self, protect=False),
            )
            self.passwords[role] = password
            self.parameters[role] = aws.ssm.Parameter(
                f"{name}-{role}-password",
                name=parameter_name(settings.stack, role),
                type="SecureString",
                value=password.result,
                description=f"Password of the {purpose} (stack {settings.stack})",
                opts=pulumi.ResourceOptions(parent=self, protect=False),
            )
        self.register_outputs({
            "parameters": [p.name for p in self.parameters.values()],
        })

    def result(self, role: str) -> pulumi.Output[str]:
        """The generated password of one role (a secret output)."""
        return pulumi.Output.secret(self.passwords[role].result)
