"""Evidence of life of legacy cron entries: matching cron's log to entries, and verdicts
that name their evidence and the period covered (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from cronsync.crontab.commandfiles import paths_of, redirect_targets, script_of
from cronsync.crontab.cronlog import CMD, FAILED, NO_MTA, CronEvent, LogRead
from cronsync.crontab.evidence import (
    ALIVE,
    DEAD,
    FAILING,
    SILENT,
    UNKNOWN,
    PathFacts,
    judge_entries,
)
from cronsync.crontab.inventory import CrontabFile, HostFacts, inventory_file

UTC = timezone.utc
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
START = NOW - timedelta(days=7)
HOST = HostFacts(NOW, ZoneInfo("UTC"))


def entries(text: str, system: bool = True, user: str | None = None) -> list:
    source = "/etc/cron.d/jobs" if system else f"/var/spool/cron/crontabs/{user}"
    return list(inventory_file(CrontabFile(source, text, system, user), HOST).entries)


def log(*events: CronEvent, first: datetime = START, last: datetime = NOW) -> LogRead:
    return LogRead(list(events), first, last, 100)


def run(
    at: datetime, user: str, command: str, pid: int = 100, truncated: bool = False
) -> CronEvent:
    return CronEvent(CMD, at, pid, user, command, truncated)


def daily(hour: int) -> list[datetime]:
    return [datetime(2026, 12, d, hour, 0, tzinfo=UTC) for d in range(1, 8) if d >= 1]


def judged(found, facts=None, log_read=None, sources=("/var/log/syslog",)):
    """Judge ``found``; each file in ``facts`` is its entries' own (evidence for them)."""
    every = frozenset((e.source, e.line) for e in found)
    own = {path: replace(f, trusted_by=every) for path, f in (facts or {}).items()}
    return judge_entries(found, log_read or log(), list(sources), own, HOST)


def test_redirects_and_scripts_are_read_from_the_shell_command() -> None:
    targets = redirect_targets("/opt/x.sh --a >> /var/log/x.log 2>&1; echo > '/tmp/y' 2>/dev/null")
    assert [(t.fd, t.path) for t in targets] == [
        (1, "/var/log/x.log"),
        (1, "/tmp/y"),
        (2, "/dev/null"),
    ]
    assert redirect_targets("a 2>&1 >&2") == []
    assert script_of("/opt/x.sh --a") == "/opt/x.sh"
    assert script_of("bash /opt/y.sh") == "/opt/y.sh"
    assert script_of("cd /tmp && ls") is None


def test_alive_ran_and_wrote_recently() -> None:
    found = entries("0 3 * * * root /opt/backup.sh >> /var/log/backup.log 2>&1\n")
    events = [run(at, "root", "/opt/backup.sh >> /var/log/backup.log 2>&1") for at in daily(3)]
    facts = {
        "/opt/backup.sh": PathFacts(True, START - timedelta(days=300), 100),
        "/var/log/backup.log": PathFacts(True, datetime(2026, 12, 7, 3, 1, tzinfo=UTC), 5000),
    }
    [result] = judged(found, facts, log(*events))
    assert result.verdict == ALIVE
    assert result.runs == 7 and result.last_seen == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    text = " ".join(result.evidence)
    assert "ran 7 times" in text and "/var/log/backup.log" in text
    assert result.period == (START, NOW)


def test_the_same_command_for_two_users_is_told_apart_by_the_user() -> None:
    found = entries("0 3 * * * root /opt/sync.sh\n0 3 * * * batch /opt/sync.sh\n")
    users = {"root", "batch"}
    found = list(
        inventory_file(
            CrontabFile(
                "/etc/cron.d/jobs",
                "0 3 * * * root /opt/sync.sh\n0 3 * * * batch /opt/sync.sh\n",
                True,
            ),
            HostFacts(NOW, ZoneInfo("UTC"), users),
        ).entries
    )
    events = [run(at, "batch", "/opt/sync.sh") for at in daily(3)]
    root, batch = judged(found, log_read=log(*events))
    assert root.runs == 0 and root.verdict == DEAD
    assert batch.runs == 7 and batch.ambiguous == 0


def test_two_identical_entries_are_ambiguous_unless_the_schedule_tells() -> None:
    same = "0 3 * * * root /opt/sync.sh\n0 3 * * * root /opt/sync.sh\n"
    events = [run(at, "root", "/opt/sync.sh") for at in daily(3)]
    first, _second = judged(entries(same), log_read=log(*events))
    assert first.ambiguous == 7 and first.runs == 0
    assert first.verdict == UNKNOWN and "cannot tell" in " ".join(first.evidence)
    apart = "0 3 * * * root /opt/sync.sh\n0 4 * * * root /opt/sync.sh\n"
    third, fourth = judged(entries(apart), log_read=log(*events))
    assert (third.runs, fourth.runs, third.ambiguous) == (7, 0, 0)


def test_a_cut_message_matches_by_prefix_and_says_so() -> None:
    command = "/opt/report.sh --with-a-very-long-argument-list " + "x" * 50
    found = entries(f"0 3 * * * root {command}\n")
    events = [run(NOW - timedelta(hours=9), "root", command[:40], truncated=True)]
    [result] = judged(found, log_read=log(*events))
    assert result.runs == 1 and result.truncated == 1


def test_percent_escapes_and_non_printables_match_as_cron_logs_them() -> None:
    found = entries("0 3 * * * root date +\\%F > /tmp/d\tcafé%stdin text\n")
    # cron logs the shell's part: \% made %, the tab as ^I, é as octal bytes
    logged = "date +%F > /tmp/d^Icaf\\303\\251"
    [result] = judged(found, log_read=log(run(daily(3)[-1], "root", logged)))
    assert result.runs == 1


def test_secrets_in_commands_still_match_and_never_show() -> None:
    found = entries("0 3 * * * root mysqldump -pS3cretPassw0rd db > /var/backups/db.sql\n")
    logged = "mysqldump -pS3cretPassw0rd db > /var/backups/db.sql"
    log_read = log(
        run(daily(3)[-1], "root", logged), run(daily(3)[-1], "root", "other -pS3cretPassw0rd")
    )
    results = judge_entries(found, log_read, ["/var/log/syslog"], {}, HOST)
    assert results[0].runs == 1
    assert "S3cret" not in repr(results)


def test_dead_when_never_seen_though_due_and_when_the_script_is_gone() -> None:
    found = entries("0 3 * * * root /opt/gone.sh\n30 4 * * * root /opt/here.sh\n")
    facts = {"/opt/gone.sh": PathFacts(False), "/opt/here.sh": PathFacts(True, START, 10)}
    gone, here = judged(found, facts)
    assert gone.verdict == DEAD and "/opt/gone.sh does not exist" in " ".join(gone.evidence)
    assert here.verdict == DEAD
    assert "never seen" in " ".join(here.evidence) and "2026-11-30" in " ".join(here.evidence)


def test_unknown_when_not_due_in_the_period_or_without_logs() -> None:
    found = entries("0 3 1 1 * root /opt/yearly.sh\n")
    [yearly] = judged(found)
    assert yearly.verdict == UNKNOWN and "not due" in " ".join(yearly.evidence)
    [nothing] = judge_entries(found, LogRead(), [], {}, HOST)
    assert nothing.verdict == UNKNOWN and nothing.period is None


def test_silent_output_to_dev_null_or_to_nobody() -> None:
    found = entries(
        "0 3 * * * root /opt/a.sh > /dev/null 2>&1\n"
        "0 4 * * * root /opt/b.sh\n"
        "0 5 * * * root /opt/c.sh >> /var/log/c.log\n"
    )
    events = [
        run(daily(3)[-1], "root", "/opt/a.sh > /dev/null 2>&1"),
        run(daily(4)[-1], "root", "/opt/b.sh"),
    ]
    events.append(run(daily(5)[-1], "root", "/opt/c.sh >> /var/log/c.log"))
    events.append(CronEvent(NO_MTA, daily(4)[-1], 99))
    facts = {"/var/log/c.log": PathFacts(True, START - timedelta(days=40), 10)}
    a, b, c = judged(found, facts, log(*events))
    assert a.verdict == SILENT and "/dev/null" in " ".join(a.evidence)
    assert b.verdict == SILENT and "No MTA" in " ".join(b.evidence)
    assert c.verdict == SILENT and "last changed" in " ".join(c.evidence)


def test_failing_only_where_the_evidence_says_so() -> None:
    found = entries("0 3 * * * root /opt/a.sh\n0 4 * * * root /opt/b.sh >> /var/log/b.log 2>&1\n")
    events = [
        run(daily(3)[-1], "root", "/opt/a.sh", pid=500),
        CronEvent(FAILED, daily(3)[-1], 500, exit_status=3),
    ]
    events.append(run(daily(4)[-1], "root", "/opt/b.sh >> /var/log/b.log 2>&1", pid=600))
    tail = ("starting", "ERROR: cannot connect to db (password=hunter2hunter2)")
    facts = {"/var/log/b.log": PathFacts(True, daily(4)[-1], 10, tail)}
    a, b = judged(found, facts, log(*events))
    assert a.verdict == FAILING and a.failures == 1 and "exit status 3" in " ".join(a.evidence)
    assert b.verdict == FAILING and "cannot connect" in " ".join(b.evidence)
    assert "hunter2hunter2" not in " ".join(b.evidence)


def test_an_entry_cron_does_not_run_is_dead_with_the_reason() -> None:
    found = entries("0 3 * * * root /opt/a.sh\n61 * * * * root /opt/b.sh\n")
    results = judged(found)
    assert all(r.verdict == DEAD for r in results)
    assert "cron does not run it" in " ".join(results[0].evidence)


def test_a_job_that_stopped_running_says_how_often_it_was_missed() -> None:
    found = entries("0 3 * * * root /opt/backup.sh\n")
    events = [run(at, "root", "/opt/backup.sh") for at in daily(3)[:3]]
    [result] = judged(found, log_read=log(*events))
    assert (
        "ran 3 times, last at 2026-12-03 03:00 UTC (not seen since, though due 4 times"
        in " ".join(result.evidence)
    )


def test_a_cut_message_may_end_inside_a_masked_secret() -> None:
    found = entries("0 3 * * * root /opt/sync.sh --password=Tr0ub4dor-and-3 --verbose\n")
    cut = run(daily(3)[-1], "root", "/opt/sync.sh --password=Tr0u", truncated=True)
    other = run(daily(3)[-1], "root", "/opt/other.sh --password=Tr0u", truncated=True)
    [result] = judged(found, log_read=log(cut, other))
    assert (result.runs, result.truncated) == (1, 1)


def test_captured_failures_name_the_job_s_own_pid_only() -> None:
    """Lines as Debian 12's cron 3.0pl1-162 logged them with ``-L 15`` (see
    test_cronlog's CAPTURED): the exit-3 job fails; the ``%`` job's SIGPIPE belongs to
    the process cron forks to feed its stdin (another pid), not to the job."""
    from cronsync.crontab.cronlog import read_syslog_text

    found = entries(
        "* * * * * root sh -c 'exit 3'\n"
        "* * * * * root printf 'x\ty' > /dev/null %line1%line2\n"
        "* * * * * root /opt/killed.sh\n"
        "* * * * * root echo 50\\% café > /dev/null\n"
    )
    at = "2026-12-07T11:04:01.000000+00:00 cronhost"
    text = (
        f"{at} CRON[31132]: (root) CMD ([31138] sh -c 'exit 3')\n"
        f"{at} CRON[31132]: (CRON) error (grandchild #31138 failed with exit status 3)\n"
        f"{at} CRON[31131]: (root) CMD ([31155] printf 'x^Iy' > /dev/null )\n"
        f"{at} CRON[31131]: (CRON) error (grandchild #31160 terminated by signal 13)\n"
        f"{at} CRON[31130]: (root) CMD ([31152] echo 50% caf\\303\\251 > /dev/null)\n"
        f"{at} CRON[31140]: (root) CMD ([31141] /opt/killed.sh)\n"
        f"{at} CRON[31140]: (CRON) error (grandchild #31141 terminated by signal 9)\n"
    )
    read = read_syslog_text(text, UTC, NOW)
    read.first = START
    exits, piped, killed, escaped = judge_entries(found, read, ["/var/log/syslog"], {}, HOST)
    assert escaped.runs == 1  # \\% logged as %, é as cron's octal bytes
    assert exits.verdict == FAILING and "exit status 3" in " ".join(exits.evidence)
    assert piped.verdict != FAILING and piped.runs == 1 and piped.failures == 0
    assert killed.verdict == FAILING and killed.failures == 1
    assert "killed by signal 9" in " ".join(killed.evidence)


def test_a_file_of_another_owner_is_neither_quoted_nor_evidence() -> None:
    found = entries("0 4 * * * batch /opt/b.sh >> /root/notes.log 2>&1\n")
    events = [run(daily(4)[-1], "batch", "/opt/b.sh >> /root/notes.log 2>&1")]
    tail = ("ERROR the root-only line",)
    facts = {"/root/notes.log": PathFacts(True, daily(4)[-1], 10, tail, owner=0)}
    [result] = judge_entries(found, log(*events), ["/var/log/syslog"], facts, HOST)
    text = " ".join(result.evidence)
    assert result.verdict == UNKNOWN and "root-only" not in text
    assert "/root/notes.log, is not batch's (owner uid 0)" in text
    assert result.to_json()["writes"][0]["modified"] is None


def test_a_file_name_the_shell_computes_is_not_guessed() -> None:
    """``>> /var/log/x-$(date +\\%F).log``: the name is made when the job runs; neither
    a file ``/var/log/x-$`` that does not exist (silent) nor cron's mail (alive)."""
    line = "0 3 * * * root /opt/x.sh >> /var/log/x-$(date +\\%F).log 2>&1\n"
    [target] = redirect_targets("/opt/x.sh >> /var/log/x-$(date +%F).log 2>&1")
    assert target.computed and target.path.startswith("/var/log/x-$(date")
    assert not any(p.startswith("/var/log") for p in paths_of(entries(line)[0]))
    events = [run(daily(3)[-1], "root", "/opt/x.sh >> /var/log/x-$(date +%F).log 2>&1")]
    [result] = judged(entries(line), log_read=log(*events))
    assert result.verdict == UNKNOWN
    assert "a name the shell makes when the job runs" in " ".join(result.evidence)


def test_a_quoted_file_name_is_read_as_the_shell_reads_it() -> None:
    targets = redirect_targets('a >> "/var/log/my app.log" 2> \'/tmp/$x\'; b > "/tmp/$y"')
    assert [(t.path, t.computed) for t in targets] == [
        ("/var/log/my app.log", False),
        ("/tmp/$x", False),  # single quotes: no expansion
        ('"/tmp/$y"', True),
    ]
