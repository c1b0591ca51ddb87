"""The instance's user_data: the POSIX-sh FreeScout bootstrap (templates/bootstrap.sh).

user_data is immutable on Lightsail: any change replaces the instance. So it is rendered only
from values that belong to the host's build (host name, install path, FreeScout source) and
never from a password, token or license key.
"""

from __future__ import annotations

import re

from freescout.scripts import template

APP_DIR = "/var/www/html/freescout"
REPO_URL = "https://github.com/freescout-help-desk/freescout.git"
DEFAULT_REF = "dist"
# Values are pasted inside single quotes in the script: allow only characters that need none.
_SAFE = re.compile(r"^[A-Za-z0-9._:/@-]+$")
_TOKEN = re.compile(r"@@[A-Z_]+@@")


def render(hostname: str, *, ref: str = DEFAULT_REF, app_dir: str = APP_DIR,
           repo_url: str = REPO_URL) -> str:
    """The bootstrap script for one host name, ready to be the instance's user_data."""
    values = {"HOSTNAME": hostname, "APP_DIR": app_dir, "REPO_URL": repo_url, "REPO_REF": ref}
    text = template("bootstrap.sh")
    for key, value in values.items():
        if not _SAFE.match(value):
            raise ValueError(f"user_data value {key}={value!r} has characters unsafe in sh")
        text = text.replace(f"@@{key}@@", value)
    left = _TOKEN.findall(text)
    if left:
        raise ValueError(f"user_data template has unfilled tokens: {sorted(set(left))}")
    return text
