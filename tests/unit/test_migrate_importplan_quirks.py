"""Planning an import of what cron runs but the host does not expect
(cronsync.migrate.importplan): cron's reading kept exactly, and what is wrong with it left for
a person with the reason; secrets that cannot be moved out, said truthfully."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

import pytest

from cronsync.crontab.inventory import CrontabFile, HostFacts, inventory_file
from cronsync.crontab.printable import LineScans
from cronsync.crontab.records import PERCENT_CUT
from cronsync.migrate.importmodel import ImportOptions, ImportPlan, PlannedJob
from cronsync.migrate.importplan import plan_import
from cronsync.migrate.lines import shell_program
from cronsync.migrate.report import render_migration

FACTS = HostFacts(datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc), ZoneInfo("UTC"), details=False)
NOT_UTF8 = ("not UTF-8: undecodable bytes are shown as U+FFFD",)


def plan(text: str, *, system: bool = False, problems: tuple[str, ...] = ()) -> ImportPlan:
    crontab = CrontabFile("/c", text, system, None if system else "batch", problems)
    return plan_import(
        [(crontab, inventory_file(crontab, FACTS))], "UTC", ImportOptions(), lambda _u: "/home"
    )


def only_job(result: ImportPlan) -> PlannedJob:
    assert len(result.jobs) == 1, [s.reason for s in result.skipped]
    return result.jobs[0]


# --- % inside a construct -------------------------------------------------------------


def test_a_cut_command_keeps_crons_meaning_and_says_what_was_meant() -> None:
    job = only_job(plan("0 0 * * * tar czf /b/www-$(date +%F).tgz /var/www\n"))
    assert job.model.shell == "printf '%s\\n' 'F).tgz /var/www' | { tar czf /b/www-$(date +; }"
    cut = [t for t in job.todo if "never worked" in t]
    assert cut == [
        "the original line never worked as written: an unescaped % cut the command inside "
        "$( … ), so cron ran `tar czf /b/www-$(date +`, which the shell cannot parse, and fed "
        "the rest to its stdin, every time; this job does the same: if a literal % was meant "
        "(\\% in a crontab), the line to run is `tar czf /b/www-$(date +%F).tgz /var/www`"
    ]
    assert not any(t.startswith(PERCENT_CUT) for t in job.todo)  # said once, for the job
    assert job.model.name == "tar"


def test_the_line_meant_keeps_real_stdin_and_reads_secrets_from_the_environment() -> None:
    job = only_job(
        plan("0 0 * * * mysql -pHunter2secret -e \"select date_format(now(), '%Y')\"%x\n")
    )
    (cut,) = [t for t in job.todo if "never worked" in t]
    assert "Hunter2secret" not in cut
    assert cut.endswith(
        "the line to run is `printf '%s\\n' x | mysql -p\"$MYSQL_PWD\" -e "
        "\"select date_format(now(), '%Y')\"`"
    )


def test_a_cut_under_another_shell_names_it_and_an_unfixable_one_says_so() -> None:
    job = only_job(plan('SHELL=/bin/bash\n0 0 * * * echo "100% broken\n'))
    assert job.model.command == ("bash", "-c", "printf '%s\\n' ' broken' | echo \"100")
    (cut,) = [t for t in job.todo if "never worked" in t]
    assert cut.endswith("write the line that was meant (a literal % is \\% in a crontab)")


def test_a_cut_is_named_after_what_was_meant() -> None:
    job = only_job(plan("25 6 * * * sleep $(( ( RANDOM % 600 ) + 1 ))m && /opt/report.sh\n"))
    assert job.model.name == "report"


# --- SHELL ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "program"),
    [
        ("SHELL=/bin/bash\n", "bash"),
        ("SHELL=/usr/bin/zsh\n", "zsh"),
        ("SHELL=/usr/local/bin/bash\n", "/usr/local/bin/bash"),
        ("SHELL=/opt/homebrew/bin/bash\n", "/opt/homebrew/bin/bash"),
        ("SHELL=/bin/bash\nPATH=/usr/local/bin:/usr/bin:/bin\n", "/bin/bash"),
        ("PATH=/usr/bin:/bin:/usr/local/bin\nSHELL=/bin/bash\n", "bash"),
    ],
)
def test_shell_is_the_interpreter_cron_used(lines: str, program: str) -> None:
    job = only_job(plan(lines + "0 1 * * * [[ -d /srv ]] && echo ok\n"))
    if program.startswith("/"):  # no absolute program in an argv: sh execs it
        assert job.model.command == ()
        assert job.model.shell == f"exec {program} -c '[[ -d /srv ]] && echo ok'"
    else:
        assert job.model.command == (program, "-c", "[[ -d /srv ]] && echo ok")
    shell = lines.split("SHELL=")[1].split("\n", maxsplit=1)[0]
    assert f"SHELL={shell}: runs as {program} -c (cronsync's shell is /bin/sh)" in job.changes


def test_a_relative_shell_is_left_for_a_person() -> None:
    job = only_job(plan("SHELL=bash\n0 1 * * * echo ok > /tmp/x\n"))
    assert job.model.command == ("bash", "-c", "echo ok > /tmp/x")
    assert any("SHELL=bash is not an absolute path" in t for t in job.todo)


def test_sh_stays_a_plain_shell_line() -> None:
    job = only_job(plan("SHELL=/bin/sh\n0 1 * * * echo ok > /tmp/x\n"))
    assert job.model.shell == "echo ok > /tmp/x" and job.model.command == ()


@pytest.mark.parametrize(
    ("shell", "path", "expected"),
    [
        ("/bin/bash", "/usr/bin:/bin", "bash"),
        ("/usr/bin/bash", "/usr/bin:/bin", "bash"),
        ("/bin/bash", "/opt/bin:/usr/bin:/bin", "/bin/bash"),
        ("/bin/bash", "$PATH:/opt/bin", "/bin/bash"),
        ("/bin/bash", "/usr/bin", "bash"),
        ("/usr/local/bin/bash", "/usr/local/bin:/usr/bin", "/usr/local/bin/bash"),
    ],
)
def test_shell_program(shell: str, path: str, expected: str) -> None:
    assert shell_program(shell, path) == expected


# --- not UTF-8, $ in values ------------------------------------------------------------


@pytest.mark.parametrize(("problems", "flagged"), [(NOT_UTF8, True), ((), False)])
def test_a_line_that_was_not_utf8_is_left_for_a_person(
    problems: tuple[str, ...], flagged: bool
) -> None:
    result = plan(
        '0 4 * * * echo "r\ufffdsum\ufffd" > /tmp/x\n0 5 * * * echo ok\n', problems=problems
    )
    first, second = result.jobs
    note = [t for t in first.todo if "not valid UTF-8" in t]
    assert bool(note) == flagged
    assert not any("UTF-8" in t for t in second.todo)
    if flagged:
        assert "replaced by U+FFFD" in note[0] and "check the command" in note[0]


def test_a_dollar_in_a_value_is_kept_literally_and_left_for_a_person() -> None:
    job = only_job(plan("PATH=$PATH:/opt/bin\n0 1 * * * report\n"))
    assert dict(job.model.env)["PATH"] == "$PATH:/opt/bin"
    assert any("cron does not expand $" in t for t in job.todo)


# --- secrets that cannot be moved out -------------------------------------------------


def skipped_reason(text: str, line: int) -> Optional[str]:
    result = plan(text, system=True)
    return next((s.reason for s in result.skipped if s.line == line), None)


def test_a_short_secret_also_in_the_same_line_says_where() -> None:
    reason = skipped_reason("0 1 * * * root mysqldump -u bob -pbob shop > /b/x.sql\n", 1)
    assert reason == (
        "the secret value (mysqldump -p) also shows elsewhere in this line (as the value of "
        "-u), so it cannot be replaced safely: move it out by hand"
    )


def test_a_long_secret_also_in_the_same_line_says_where() -> None:
    reason = skipped_reason("0 1 * * * root /opt/x.sh --user=bobby2 --password=bobby2\n", 1)
    assert reason is not None
    assert reason.startswith("the secret value (--password) also shows elsewhere in this line")
    assert "(as the value of --user=)" in reason and "bobby2" not in reason


def test_a_secret_variable_also_in_the_command_says_so() -> None:
    text = 'API_TOKEN=tokabcdef99\n0 1 * * * root curl -H "X-Token: tokabcdef99" https://x\n'
    assert skipped_reason(text, 2) == (
        "the value of the secret variable API_TOKEN also shows in this job (inside word 3 of "
        "the command), so it cannot be replaced safely: move it out by hand"
    )


def test_a_secret_of_another_line_says_which() -> None:
    text = "0 1 * * * root mysql -psecret99 shop\n0 2 * * * root /opt/check secret99\n"
    assert skipped_reason(text, 2) == (
        "its command holds (as word 2 of the command) a value that is a secret on another "
        "line (job mysql's mysql -p), so it cannot be replaced safely here: move it out by hand"
    )


# --- names and the report -------------------------------------------------------------


def test_jobs_of_one_program_get_the_argument_that_differs() -> None:
    result = plan("0 */4 * * * rsnapshot alpha\n30 3 * * * rsnapshot daily\n0 1 * * * echo a\n")
    assert [job.model.name for job in result.jobs] == ["rsnapshot", "rsnapshot-daily", "echo"]


def test_migration_shows_each_schedule_in_words() -> None:
    report = render_migration(plan("0 6 * * * /opt/a.sh\n@reboot /opt/b.sh\n"))
    assert "- Schedule: `0 6 * * *` (at 06:00 every day)" in report
    assert "- Schedule: `@reboot` (" in report
    assert "()" not in report


# --- the origin's digest --------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "0 1 * * * root mysql --password shopdb < /srv/q.sql",  # masked only read from 0
        "*/5 * * * * root mysqldump -uroot -ppw1secret shop > /b/s.sql",
        "0 2 * * * root /usr/local/bin/report --full",
    ],
)
def test_the_origin_matches_the_line_as_adopt_reads_it(line: str) -> None:
    # adopt recomputes masked_digest(line) (the line read from 0), whatever the
    # inventory's reading at the command found; the import's scans must give the same
    crontab = CrontabFile("/etc/crontab", line + "\n", True, None)
    scans: LineScans = {}
    pairs = [(crontab, inventory_file(crontab, FACTS, scans))]
    result = plan_import(pairs, "UTC", ImportOptions(), lambda _u: "/root", scans=scans)
    (origin,) = only_job(result).model.origins
    assert origin.matches(line.encode())
