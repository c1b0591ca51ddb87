"""user_data and the provisioning scripts: POSIX sh that dash runs as written (F1, F2).

Real tools: `dash -n` and `shellcheck -s sh` on the rendered text, plus freescout.shell_lint
for the bash-only constructs dash does not reject. Negative tests show the check catches each.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from freescout import scripts, shell_lint, userdata
from tests import program_mocks as pm
from tests.conftest import need

RENDERED = userdata.render("tickets.raxx.app")
SCRIPTS = {name: scripts.script(name) for name in scripts.REMOTE_SCRIPTS + scripts.LOCAL_SCRIPTS}
ALL = {"user_data": RENDERED, **SCRIPTS}


def run_tool(tool: str, args: list[str], text: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which(tool)
    need(path is not None, tool, f"sudo apt-get install {tool} (or 'sh tools/setup.sh')")
    assert path is not None
    return subprocess.run([path, *args], input=text, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", sorted(ALL))
def test_dash_parses(name: str) -> None:
    result = run_tool("dash", ["-n"], ALL[name])
    assert result.returncode == 0, f"{name}: {result.stderr}"


@pytest.mark.parametrize("name", sorted(ALL))
def test_shellcheck_as_posix_sh(name: str) -> None:
    result = run_tool("shellcheck", ["-s", "sh", "-"], ALL[name])
    assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_bashisms(name: str) -> None:
    assert shell_lint.bashisms(ALL[name]) == [], name


@pytest.mark.parametrize(("construct", "line"), [
    ("double-bracket test", 'if [[ -f /etc/x ]]; then echo y; fi'),
    ("== inside [ ]", 'if [ "$a" == "b" ]; then echo y; fi'),
    ("== inside [ ]", 'test "$a" == b && echo y'),
    ("source", "source /etc/profile"),
    ("pipefail", "set -o pipefail"),
    ("PIPESTATUS", 'echo "${PIPESTATUS[0]}"'),
    ("EUID", 'if [ "$EUID" -ne 0 ]; then exit 1; fi'),
    ("function keyword", "function install_app {"),
    ("here-string", 'read -r x <<< "$y"'),
    ("&> redirection", "composer install &> /tmp/log"),
    ("process substitution", "diff <(ls a) <(ls b)"),
    ("process substitution", "exec > >(tee -a /var/log/x)"),
])
def test_the_check_catches_each_bashism(construct: str, line: str) -> None:
    text = RENDERED.replace("set -eu\n", f"set -eu\n{line}\n", 1)
    found = shell_lint.bashisms(text)
    assert [f.construct for f in found] == [construct], (line, found)
    assert found[0].line == RENDERED.splitlines().index("set -eu") + 2


@pytest.mark.parametrize("line", [
    '[ "$a" = "b" ]', ". /etc/profile", "set -eu", "out=$(cmd 2>&1) || rc=$?",
    "# a comment may say [[ or source freely", "cmd >/dev/null 2>&1", "f() { :; }",
    "awk '$1 == \"Name\" { print }'",
])
def test_the_check_passes_posix(line: str) -> None:
    assert shell_lint.bashisms(line) == [], line


def test_dash_n_alone_misses_what_the_check_catches() -> None:
    text = "#!/bin/sh\nset -eu\nif [[ -f /x ]]; then echo y; fi\n"
    assert run_tool("dash", ["-n"], text).returncode == 0
    assert shell_lint.bashisms(text), "the construct check must catch [[ ]]"


def test_bootstrap_order_and_logging() -> None:
    lines = RENDERED.splitlines()

    def first(pattern: str) -> int:
        return next(i for i, line in enumerate(lines) if re.search(pattern, line))

    assert lines[0] == "#!/bin/sh"
    assert first(r"^set -eu$") < first(r"^exec >>/var/log/freescout-bootstrap\.log 2>&1$")
    composer = first(r"^\s*composer install")
    for var in ("HOME=/root", "COMPOSER_HOME=/root/.composer", "COMPOSER_NO_INTERACTION=1"):
        assert first(rf"^{re.escape(var)}$") < composer, var
    assert first(r"^export .*\bHOME\b.*\bCOMPOSER_HOME\b.*\bCOMPOSER_NO_INTERACTION\b") < composer
    autoload_check = first(r"\[ -f vendor/autoload\.php \]")
    assert composer < autoload_check < first(r"php artisan")
    assert first(r"git clone") < composer < first(r"artisan migrate --force")
    assert first(r"ServerName \$SITE_HOST") > 0
    assert "SITE_HOST='tickets.raxx.app'" in RENDERED
    assert "APP_DIR='/var/www/html/freescout'" in RENDERED
    # F2: nothing that must succeed is piped into tee.
    assert not re.search(r"\|\s*tee\b", RENDERED)


def test_user_data_holds_no_secret() -> None:
    values, _ = pm.prod_config()
    code = [line for line in userdata.render("tickets.raxx.app").splitlines()
            if not line.lstrip().startswith("#")]
    text = "\n".join(code).lower()
    for key, value in values.items():
        if "license" in key or key == "cloudflare:apiToken":
            assert value.lower() not in text, key
    for word in ("license", "token", "secret"):
        assert word not in text, f"user_data mentions {word!r}"
    assert "@@" not in text


def test_render_refuses_unsafe_values() -> None:
    with pytest.raises(ValueError):
        userdata.render("tickets.raxx.app'; rm -rf / #")


def test_remote_commands_run_under_dash_with_quoted_arguments() -> None:
    command = scripts.remote_command("module_install", "tags", scripts.php("module_activate"))
    assert command.startswith("sudo /bin/sh -c '")
    assert " module-install tags '" in command, "script name, then the alias, then the PHP"
    assert "TEST-LICENSE" not in command


def test_php_snippets_read_secrets_from_stdin_only() -> None:
    for name in scripts.PHP_SNIPPETS:
        code = scripts.php(name)
        assert "fgets(STDIN)" in code, name
        assert "<?php" not in code, f"{name}: php -r takes code without the opening tag"
        assert "getenv('LICENSE" not in code and "$argv[2]" not in code, name
