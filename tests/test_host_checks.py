"""Host checks: the pure parsers on field-note samples, and the waits over a scripted shell.

`ScriptedShell` below stands in for the instance: it replays answers and records commands. It does
not prove that a real cloud-init or FreeScout prints exactly these samples (they come from
cloud-init's docs and the nwidart/laravel-modules 2.x source FreeScout uses), nor that the commands
run on Debian 12 as written; the data check's command is proven end to end against a real sshd and
MariaDB in test_host_checks_live.py.
"""

from __future__ import annotations

import pytest

from operations.errors import DeadlineExceeded, OpsError
from operations.host_checks import (
    CloudInitState,
    DataState,
    check_modules,
    data_check_command,
    module_list_command,
    parse_cloud_init_status,
    parse_data_check,
    parse_module_list,
    require_cloud_init_done,
    require_modules_active,
    wait_cloud_init,
)
from operations.ports import CommandResult
from operations.retry import Backoff, Clock
from operations.ssh import SshConnectError


class ScriptedShell:
    """A RemoteShell fake: answers from a list (an exception is raised), records the commands."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.commands: list[str] = []

    def run(self, command, *, stdin=None, timeout=120):
        self.commands.append(command)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def ok(stdout: str = "", code: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult(code, stdout, stderr)


# ------------------------------------------------------------------ data check


@pytest.mark.parametrize(
    ("result", "state", "counts"),
    [
        (ok("0\n1\n"), DataState.EMPTY, (0, 1)),
        (ok("0\n0\n"), DataState.EMPTY, (0, 0)),
        (ok("3\n1\n"), DataState.HAS_DATA, (3, 1)),
        (ok("0\n2\n"), DataState.HAS_DATA, (0, 2)),
        (ok("0\r\n1\r\n"), DataState.EMPTY, (0, 1)),
        (ok("conv\n0\nusers\n1\n"), DataState.UNKNOWN, None),  # headers: -N was lost
        (ok("+------+\n| conv |\n+------+\n|    0 |\n"), DataState.UNKNOWN, None),  # a pty table
        (ok("0\n"), DataState.UNKNOWN, None),
        (ok("0\n1\n7\n"), DataState.UNKNOWN, None),
        (ok(""), DataState.UNKNOWN, None),
        (ok("-1\n1\n"), DataState.UNKNOWN, None),
        (ok("0\n1\n", code=1), DataState.UNKNOWN, None),
        (
            ok(
                code=1,
                stderr="ERROR 1146 (42S02) at line 1: Table 'freescout.conversations' "
                "doesn't exist",
            ),
            DataState.UNKNOWN,
            None,
        ),
        (
            ok(code=1, stderr="ERROR 1698 (28000): Access denied for user 'root'@'localhost'"),
            DataState.UNKNOWN,
            None,
        ),
    ],
)
def test_parse_data_check(result, state, counts):
    check = parse_data_check(result)
    assert check.state is state
    if counts is not None:
        assert (check.conversations, check.users) == counts
    assert check.blocks_destroy is (state is not DataState.EMPTY)


def test_unknown_names_the_database_error():
    check = parse_data_check(ok(code=1, stderr="ERROR 1146 (42S02) at line 1: Table x"))
    assert "ERROR 1146" in check.detail and "exited 1" in check.detail


def test_data_check_command_has_no_secret_and_quotes_paths():
    command = data_check_command(password_file="/tmp/it's here")
    assert command.startswith("sudo -n sh -c ")
    assert "MYSQL_PWD=$(cat" in command and "-N" in command and "-B" in command
    assert "-p" not in command.split()  # no password option anywhere


# ------------------------------------------------------------------ cloud-init

LONG_DONE_23 = """\
status: done
extended_status: done
boot_status_code: enabled-by-generator
last_update: Mon, 04 May 2026 12:03:11 +0000
detail:
DataSourceEc2Local
errors: []
recoverable_errors: {}
"""

LONG_ERROR_23 = """\
status: error
extended_status: error - done
boot_status_code: enabled-by-generator
last_update: Mon, 04 May 2026 12:03:11 +0000
detail:
DataSourceEc2Local
errors:
\t- ('scripts_user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))
recoverable_errors: {}
"""

LONG_DEGRADED = """\
status: done
extended_status: degraded done
boot_status_code: enabled-by-generator
detail:
DataSourceEc2Local
errors: []
recoverable_errors:
WARNING:
\t- Unhandled unknown content-type (text/x-shellscript-bad) userdata
"""

LONG_ERROR_22 = """\
status: error
time: Mon, 04 May 2026 12:03:11 +0000
detail:
('scripts-user', RuntimeError('Runparts: 1 failures in 1 attempted commands'))
"""


@pytest.mark.parametrize(
    ("stdout", "code", "state"),
    [
        ("status: done\n", 0, CloudInitState.DONE),
        (LONG_DONE_23, 0, CloudInitState.DONE),
        ("......status: done\n", 0, CloudInitState.DONE),
        ("......status: error\n", 1, CloudInitState.ERROR),
        (LONG_ERROR_23, 1, CloudInitState.ERROR),
        (LONG_ERROR_22, 1, CloudInitState.ERROR),
        ("status: error\n", 0, CloudInitState.ERROR),  # the line wins over a lying code
        (LONG_DEGRADED, 2, CloudInitState.DEGRADED),
        ("status: done\nextended_status: degraded done\n", 0, CloudInitState.DEGRADED),
        ("status: running\n", 0, CloudInitState.RUNNING),
        ("status: running\nextended_status: degraded running\n", 2, CloudInitState.RUNNING),
        ("status: not started\n", 0, CloudInitState.RUNNING),
        ("status: disabled\n", 0, CloudInitState.UNKNOWN),
        ("status: done\n", 127, CloudInitState.UNKNOWN),
        ("", 1, CloudInitState.UNKNOWN),  # e.g. sudo refused: no status line at all
        ("sh: 1: cloud-init: not found\n", 127, CloudInitState.UNKNOWN),
        ("status: something-new\n", 0, CloudInitState.UNKNOWN),
    ],
)
def test_parse_cloud_init_status(stdout, code, state):
    assert parse_cloud_init_status(stdout, code).state is state


def test_errors_lists_are_read():
    status = parse_cloud_init_status(LONG_ERROR_23, 1)
    assert status.extended_status == "error - done"
    assert len(status.errors) == 1 and "scripts_user" in status.errors[0]
    degraded = parse_cloud_init_status(LONG_DEGRADED, 2)
    assert degraded.errors == ()
    assert degraded.recoverable_errors and "content-type" in degraded.recoverable_errors[0]
    assert "scripts-user" in parse_cloud_init_status(LONG_ERROR_22, 1).detail


def test_error_brings_the_log_tail():
    shell = ScriptedShell(
        [ok("composer: The HOME or COMPOSER_HOME environment variable must be set\n")]
    )
    status = parse_cloud_init_status(LONG_ERROR_23, 1)
    with pytest.raises(OpsError) as caught:
        require_cloud_init_done(shell, status)
    assert "COMPOSER_HOME" in (caught.value.cause or "")
    assert "tail -n 40 /var/log/cloud-init-output.log" in shell.commands[0]


def test_degraded_fails_unless_allowed():
    status = parse_cloud_init_status(LONG_DEGRADED, 2)
    with pytest.raises(OpsError, match="degraded"):
        require_cloud_init_done(ScriptedShell([]), status)
    assert require_cloud_init_done(ScriptedShell([]), status, allow_degraded=True) is status


def _fake_clock():
    t = [0.0]

    def sleep(seconds: float) -> None:
        t[0] += seconds

    return t, Clock(now=lambda: t[0], sleep=sleep)


def test_wait_cloud_init_rides_out_ssh_drops_and_running():
    shell = ScriptedShell(
        [
            ok("status: running\n"),
            SshConnectError("could not connect", cause="Connection refused"),
            ok(".....status: running\n"),
            ok("status: done\n"),
        ]
    )
    t, clock = _fake_clock()
    messages: list[str] = []
    status = wait_cloud_init(
        shell,
        deadline_seconds=600,
        clock=clock,
        backoff=Backoff(first=10, factor=1, maximum=10),
        on_progress=messages.append,
    )
    assert status.state is CloudInitState.DONE
    assert t[0] == 30 and len(messages) == 3 and "cloud-init" in messages[0]


def test_wait_cloud_init_deadline_says_what_it_saw():
    shell = ScriptedShell([ok("status: running\n")] * 10)
    _, clock = _fake_clock()
    with pytest.raises(DeadlineExceeded) as caught:
        wait_cloud_init(
            shell, deadline_seconds=25, clock=clock, backoff=Backoff(first=10, factor=1, maximum=10)
        )
    assert "running" in (caught.value.cause or "")


def test_wait_cloud_init_error_fails_at_once():
    shell = ScriptedShell([ok("status: error\n", 1), ok("last lines of the log\n")])
    _, clock = _fake_clock()
    with pytest.raises(OpsError, match="cloud-init finished with an error"):
        wait_cloud_init(shell, deadline_seconds=600, clock=clock)


# ------------------------------------------------------------------ module list

# The shape of `php artisan module:list` in FreeScout (nwidart/laravel-modules 2.7.0).
MODULE_TABLE = """\
+---------------+----------+-------+---------------------------------------------+
| Name          | Status   | Order | Path                                        |
+---------------+----------+-------+---------------------------------------------+
| ApiWebhooks   | Enabled  | 0     | /var/www/html/freescout/Modules/ApiWebhooks |
| CustomFields  | Enabled  | 0     | /var/www/html/freescout/Modules/CustomFields|
| Tags          | Disabled | 0     | /var/www/html/freescout/Modules/Tags        |
| Workflows     | Enabled  | 0     | /var/www/html/freescout/Modules/Workflows   |
+---------------+----------+-------+---------------------------------------------+
"""

ALIAS_TABLE = """\
+--------------+--------------+--------+
| Name         | Alias        | Status |
+--------------+--------------+--------+
| Saved Replies| savedreplies | \x1b[32mActive\x1b[39m |
| Slack        | slack        | Inactive |
+--------------+--------------+--------+
"""


def test_parse_module_table():
    modules = parse_module_list(MODULE_TABLE)
    assert modules == {
        "ApiWebhooks": "Enabled",
        "CustomFields": "Enabled",
        "Tags": "Disabled",
        "Workflows": "Enabled",
    }


def test_parse_alias_table_and_colours():
    modules = parse_module_list(ALIAS_TABLE)
    assert modules["savedreplies"] == "Active" and modules["Slack"] == "Inactive"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Could not open input file: artisan\n",
        "| Module | Enabled |\n| x | y |\n",
        "| Name | Status |\n| ApiWebhooks | Enabled | 0 |\n",
    ],
)
def test_unreadable_module_output_is_an_error(text):
    with pytest.raises(OpsError):
        parse_module_list(text)


def test_check_modules_reports_missing_and_inactive():
    check = check_modules(
        parse_module_list(MODULE_TABLE),
        ["apiwebhooks", "custom_fields", "tags", "workflows", "reports"],
    )
    assert not check.ok
    assert check.active == ("apiwebhooks", "custom_fields", "workflows")
    assert check.inactive == (("tags", "Disabled"),)
    assert check.missing == ("reports",)
    assert "tags (Disabled)" in check.describe() and "missing: reports" in check.describe()


def test_require_modules_active_over_a_shell():
    shell = ScriptedShell([ok(MODULE_TABLE)])
    with pytest.raises(OpsError) as caught:
        require_modules_active(shell, ["ApiWebhooks", "Tags"])
    assert "Tags (Disabled)" in (caught.value.cause or "")
    assert shell.commands == [module_list_command()]
    assert "sudo -n -u www-data php artisan module:list" in shell.commands[0]
    shell = ScriptedShell([ok(MODULE_TABLE)])
    assert require_modules_active(shell, ["ApiWebhooks", "workflows"]).ok


def test_no_modules_configured_needs_no_listing():
    assert require_modules_active(ScriptedShell([]), []).ok


def test_failing_module_list_is_an_error():
    shell = ScriptedShell([ok(code=1, stderr="PHP Fatal error: Class not found")])
    with pytest.raises(OpsError, match="exited 1"):
        require_modules_active(shell, ["tags"])
