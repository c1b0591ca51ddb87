"""The shell (and PHP) that provisioning runs, and the command lines that run it.

Scripts live in freescout/templates/ as plain files so the tests can lint each one. A remote
step runs `sudo /bin/sh -c SCRIPT NAME ARGS...` over SSH: the script and its arguments hold no
secret (those come on the command's stdin), so nothing secret appears in a process list.
"""

from __future__ import annotations

import shlex
from importlib import resources

REMOTE_SCRIPTS = ("wait_for_cloud_init", "configure", "module_install", "cache_clear")
LOCAL_SCRIPTS = ("snapshot",)
PHP_SNIPPETS = ("set_admin", "module_activate")


def template(filename: str) -> str:
    """The text of one file in freescout/templates/."""
    return resources.files("freescout").joinpath("templates", filename).read_text("utf-8")


def script(name: str) -> str:
    """The text of a provisioning shell script by name (without .sh)."""
    if name not in REMOTE_SCRIPTS + LOCAL_SCRIPTS:
        raise KeyError(f"no provisioning script named {name!r}")
    return template(f"{name}.sh")


def php(name: str) -> str:
    """A PHP snippet for `php -r` (no opening tag), by name (without .php)."""
    if name not in PHP_SNIPPETS:
        raise KeyError(f"no PHP snippet named {name!r}")
    return template(f"{name}.php")


def sh_command(text: str, name: str, *args: str) -> str:
    """`/bin/sh -c TEXT NAME ARGS...`, every part quoted for the shell that runs it."""
    return " ".join(["/bin/sh", "-c", shlex.quote(text), shlex.quote(name)]
                    + [shlex.quote(a) for a in args])


def remote_command(name: str, *args: str) -> str:
    """The command line of a remote step: the script runs as root under dash via sudo."""
    return "sudo " + sh_command(script(name), name.replace("_", "-"), *args)


def local_command(name: str, *args: str) -> str:
    """The command line of a step on the operator's machine."""
    return sh_command(script(name), name.replace("_", "-"), *args)


# The project's virtualenv when the step runs in the project folder (Pulumi starts providers
# there), else the `python3` of the operator's activated virtualenv.
_PICK_PYTHON = "if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi; "


def python_module_command(module: str, *args: str) -> str:
    """`python -m MODULE ARGS...` for a step on the operator's machine, quoted for sh.

    No absolute interpreter path goes into the command: it is an input of the step, and a path
    that differs from machine to machine would show as a change in every preview run elsewhere
    (pull-request checks) and re-run the step for nothing.
    """
    return _PICK_PYTHON + 'exec "$py" ' + shlex.join(["-m", module, *args])
