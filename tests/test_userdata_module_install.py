"""module_install.sh judged by output and filesystem, not exit code (F3), run by real dash.

FreeScout cannot run here: `php` and `runuser` are fakes on PATH that print what FreeScout's
artisan commands print in each case (success, unknown alias with exit 0, a missing
public/modules link, a module listed as Disabled). This proves the script's judgement and that
the license key reaches PHP on stdin only; it does not prove FreeScout's real behaviour.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from freescout import scripts
from tests.conftest import need

LICENSE = "TEST-LICENSE-tags-v1"
TABLE_OK = """+------+---------+-------+---------------------------------------+
| Name | Status  | Order | Path                                  |
+------+---------+-------+---------------------------------------+
| Tags | Enabled | 0     | /var/www/html/freescout/Modules/Tags  |
| Slack| Disabled| 0     | /var/www/html/freescout/Modules/Slack |
+------+---------+-------+---------------------------------------+
"""
INSTALLED = "Module installed\nConfiguration cache cleared!\nConfiguration cached successfully!\n"

FAKE_PHP = """#!/bin/sh
# Fake php: records its arguments, answers like FreeScout's artisan per FAKE_* variables.
printf '%s\\n' "$*" >>"$FAKE_LOG/argv"
if [ "$1" = "-r" ]; then
    cat >"$FAKE_LOG/stdin"
    printf '%s\\n' "$FAKE_NAME"
    exit "${FAKE_ACTIVATE_RC:-0}"
fi
case "$2" in
    freescout:module-install)
        printf '%s' "$FAKE_INSTALL_OUT"
        if [ "$FAKE_LINK" = yes ]; then mkdir -p "public/modules/$3"; fi
        ;;
    module:list) printf '%s' "$FAKE_TABLE" ;;
esac
exit 0
"""
FAKE_RUNUSER = """#!/bin/sh
# Fake runuser: drops "-u USER --" and runs the rest.
shift 3
exec "$@"
"""


@pytest.fixture
def host(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "vendor").mkdir(parents=True)
    (app / "vendor" / "autoload.php").write_text("<?php\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("php", FAKE_PHP), ("runuser", FAKE_RUNUSER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "log").mkdir()
    return tmp_path


def install(host: Path, alias: str = "tags", **fake: str) -> subprocess.CompletedProcess[str]:
    dash = shutil.which("dash")
    need(dash is not None, "dash", "sudo apt-get install dash (or 'sh tools/setup.sh')")
    assert dash is not None
    env = {
        "PATH": f"{host / 'bin'}:/usr/bin:/bin",
        "FREESCOUT_DIR": str(host / "app"),
        "FAKE_LOG": str(host / "log"),
        "FAKE_NAME": "Tags",
        "FAKE_INSTALL_OUT": INSTALLED,
        "FAKE_LINK": "yes",
        "FAKE_TABLE": TABLE_OK,
        **fake,
    }
    return subprocess.run(
        [dash, "-c", scripts.script("module_install"), "module-install", alias,
         scripts.php("module_activate")],
        input=LICENSE + "\n", capture_output=True, text=True, env=env, timeout=60,
        cwd=os.fspath(host),
    )


def test_success_needs_cached_config_link_and_enabled_row(host: Path) -> None:
    result = install(host)
    assert result.returncode == 0, result.stderr
    assert "Tags is Enabled" in result.stdout
    assert (host / "log" / "stdin").read_text() == LICENSE + "\n"
    argv = (host / "log" / "argv").read_text()
    assert LICENSE not in argv, "the license key must never be an argument"
    assert "artisan freescout:module-install tags" in argv, "the alias is always passed"


def test_unknown_alias_with_exit_zero_fails(host: Path) -> None:
    result = install(host, FAKE_INSTALL_OUT="Module with the specified alias not found: tags\n",
                     FAKE_LINK="no")
    assert result.returncode == 1
    assert "did not report 'Configuration cached successfully'" in result.stderr


def test_missing_public_link_fails(host: Path) -> None:
    result = install(host, FAKE_LINK="no")
    assert result.returncode == 1
    assert "public/modules/tags is missing" in result.stderr


def test_module_listed_disabled_fails(host: Path) -> None:
    result = install(host, FAKE_TABLE=TABLE_OK.replace("| Tags | Enabled |", "| Tags | Disabled|"))
    assert result.returncode == 1
    assert "shows Tags as 'Disabled'" in result.stderr


def test_module_absent_from_list_fails(host: Path) -> None:
    result = install(host, FAKE_NAME="Workflows")
    assert result.returncode == 1
    assert "no row for Workflows" in result.stderr


def test_activation_failure_stops_before_install(host: Path) -> None:
    result = install(host, FAKE_ACTIVATE_RC="3")
    assert result.returncode == 1
    assert "license activation or download failed" in result.stderr
    assert "module-install" not in (host / "log" / "argv").read_text().split("\n", 1)[-1]


def test_bad_alias_refused(host: Path) -> None:
    result = install(host, alias="tags; rm -rf /")
    assert result.returncode == 1
    assert "lower-case letters and digits" in result.stderr
