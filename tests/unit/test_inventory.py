"""The crontab inventory (cronsync.crontab.inventory): what Debian's cron does with a crontab.

The expectations of ``parse_env_line``, ``split_percent`` and the whole-file rules were
observed by running Debian's cron 3.0pl1-162 on each input (one cron.d file per case,
jobs writing their environment and stdin to files).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.core.render import HEADER
from cronsync.crontab.inventory import CrontabFile, HostFacts, inventory_file
from cronsync.crontab.line import parse_env_line, split_percent
from cronsync.crontab.records import FileInventory, InventoryEntry

DATA = Path(__file__).resolve().parents[1] / "data" / "crontabs"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)  # a Saturday
UTC = ZoneInfo("UTC")
USERS = frozenset({"root", "batch", "postgres", "www-data", "alice"})
HOST = HostFacts(NOW, UTC, USERS)
SECRETS = [
    line
    for line in (DATA / "SECRETS").read_text().splitlines()
    if line and not line.startswith("#")
]
SYSTEM_FILES = [
    "legacy-etc-crontab", "cron.d-backup", "crlf-blank-line", "tabs-system", "no-final-newline",
    "one-bad-line", "inline-secrets", "commented-out", "prose", "broken-lines", "six-fields",
    "no-command", "missing-user", "cronsync-managed", "cron-tz",
]  # fmt: skip
USER_FILES = ["crontab-l-dump", "crlf-user", "user-quirks", "user-six-fields"]


def data_file(name: str, *, system: bool, user: Optional[str] = None) -> FileInventory:
    text = (DATA / name).read_bytes().decode("utf-8")
    return inventory_file(CrontabFile(name, text, system, user), HOST)


def inv(text: str, *, system: bool = True, host: HostFacts = HOST) -> FileInventory:
    return inventory_file(CrontabFile("test", text, system, None if system else "alice"), host)


def by_line(report: FileInventory) -> dict[int, InventoryEntry]:
    return {entry.line: entry for entry in report.entries}


def states(report: FileInventory) -> dict[int, str]:
    return {entry.line: entry.state for entry in report.entries}


# --- cron's readers, as observed -----------------------------------------------------

ENV_LINES = [
    ('A="a b "', ("A", "a b")),
    ("A='c d '", ("A", "c d")),
    ("A=  spaced value   ", ("A", "spaced value")),
    ('A="unterminated', None),
    ("A = x", ("A", "x")),
    ('A="q"trail', None),
    ("A=val # comment", ("A", "val # comment")),
    ("A=abc#def", ("A", "abc#def")),
    ('A=""', ("A", "")),
    ('MAILTO=""', ("MAILTO", "")),
    ('A ="x"', ("A", "x")),
    ('A= "y"', ("A", "y")),
    ("  A=lead", ("A", "lead")),
    ('A="in"ner"', None),
    ("A=a=b", ("A", "a=b")),
    ("A='single'", ("A", "single")),
    ('A="  "', ("A", "")),
    ("A=x y  z", ("A", "x y  z")),
    ('A="a b" ', ("A", "a b")),
    ("A=\ttabbed\t", ("A", "tabbed")),
    ("A='mixed\"", None),
    ('A="x" # comment', None),
    ('"A B"=x', ("A B", "x")),
    ("A B=x", None),
    ("A\t=\tx", ("A", "x")),
    ('A=""x', None),
    ("A=''", ("A", "")),
    ("'A'=x", ("A", "x")),
    ("=x", ("", "x")),
    ('A="a=b"', ("A", "a=b")),
    ("A=#x", ("A", "#x")),
    ('A="#x"', ("A", "#x")),
    ('A=a"b"', ("A", 'a"b"')),
    ('A=" x"', ("A", " x")),
    ('A=  "x"  ', ("A", "x")),
    ("A==x", ("A", "=x")),
    ("A=x\\", ("A", "x\\")),
    ('A="a b  "', ("A", "a b")),
    ('A"B"=x', ('A"B"', "x")),
    ('A="x"y"', None),
    ("A='x'\"y\"", None),
    ("A=$HOME", ("A", "$HOME")),
    ('A="x\\"y"', None),
    ("A=", None),
    ("A= ", None),
    ("JUSTWORD", None),
    ("1X=y", ("1X", "y")),
    ("MY-VAR=y", ("MY-VAR", "y")),
    ("CR1=value\r", ("CR1", "value")),
    ('CR2="quoted"\r', ("CR2", "quoted")),
    ("* * * * * root env > /tmp/x", None),
    ("0 3 * * * root FOO=bar /x", None),
    ("@daily root X=1 /x", None),
]


@pytest.mark.parametrize(("line", "expected"), ENV_LINES)
def test_env_lines_read_as_debian_cron_reads_them(
    line: str, expected: Optional[tuple[str, str]]
) -> None:
    assert parse_env_line(line) == expected


PERCENT = [
    ("cat > f%hello", ("cat > f", "hello\n")),
    ("cat > f%hello%", ("cat > f", "hello\n")),
    ("cat > f%hello\\%", ("cat > f", "hello%\n")),
    ("cat > f%a\\b", ("cat > f", "a\\b\n")),
    ("cat > f %", ("cat > f ", "")),
    ("cat > f; echo done \\\\%xyz", ("cat > f; echo done \\\\", "xyz\n")),
    ("echo 'A\\%B|C\\xD' > f", ("echo 'A%B|C\\xD' > f", None)),
    ("od -c > f%l1%l2\\%x\\yz%%end\\", ("od -c > f", "l1\nl2%x\\yz\n\nend\\\n")),
    ("%echo hi", ("", "echo hi\n")),
    ("date +\\%Y-\\%m-\\%d", ("date +%Y-%m-%d", None)),
]


@pytest.mark.parametrize(("command", "expected"), PERCENT)
def test_percent_splits_command_and_stdin_as_observed(
    command: str, expected: tuple[str, Optional[str]]
) -> None:
    assert split_percent(command) == expected


# --- whole files ---------------------------------------------------------------------


def test_legacy_etc_crontab() -> None:
    report = data_file("legacy-etc-crontab", system=True)
    assert not report.ignored and report.problems == ()
    assert states(report) == {
        22: "runs",
        23: "runs",
        24: "runs",
        25: "runs",
        27: "runs",
        28: "commented-out",
        29: "runs",
    }  # fmt: skip  (line 21, Debian's example line, is not a job)
    hourly = by_line(report)[22]
    assert (hourly.user, hourly.schedule, hourly.description) == (
        "root",
        "17 * * * *",
        "every hour at minute 17",
    )
    assert hourly.next_run == datetime(2026, 11, 28, 12, 17, tzinfo=UTC)
    assert hourly.command == "cd / && run-parts --report /etc/cron.hourly"
    env = dict(hourly.env)
    assert env["MAILTO"] == "" and env["RAILS_ENV"] == "production"
    assert env["REPORT_TITLE"] == "Nightly batch"  # trailing blank lost, as in cron
    assert env["DB_PASSWORD"] == "***"
    assert ("env_assignment", "DB_PASSWORD") in hourly.secrets
    aggregate = by_line(report)[27]
    assert dict(aggregate.env)["MAILTO"] == "ops@example.com"  # the later setting
    assert aggregate.user == "batch"
    assert aggregate.next_run == datetime(2026, 11, 30, 3, 30, tzinfo=UTC)
    old = by_line(report)[28]
    assert old.commented_out and not old.runs
    assert old.command.startswith("/opt/batch/bin/old-cleanup.sh")
    reboot = by_line(report)[29]
    assert (reboot.description, reboot.next_run, reboot.runs) == ("at boot", None, True)


def test_crontab_l_dump_with_header_stdin_and_commented_job() -> None:
    report = data_file("crontab-l-dump", system=False, user="batch")
    assert report.notes and "crontab(1)" in report.notes[0]
    assert states(report) == {12: "runs", 13: "runs", 14: "runs", 15: "runs", 16: "commented-out"}
    mail = by_line(report)[13]
    assert mail.user == "batch"
    assert mail.shell_command == 'mail -s "Daily report" team@example.com'
    assert mail.stdin == "Good morning,\nthe report is at /srv/report-%Y.html\n"
    assert by_line(report)[15].next_run == datetime(2027, 1, 1, 0, 0, tzinfo=UTC)


def test_crlf_user_crontab_runs_with_a_trailing_cr() -> None:
    report = data_file("crlf-user", system=False, user="batch")
    assert not report.ignored
    nightly = by_line(report)[4]
    assert nightly.runs and nightly.command == "/srv/app/bin/nightly.sh\r"
    assert "carriage return" in nightly.problems[0]
    assert dict(nightly.env) == {"MAILTO": "", "APP_HOME": "/srv/app"}


def test_crlf_blank_line_makes_cron_ignore_the_file() -> None:
    report = data_file("crlf-blank-line", system=True)
    assert report.ignored
    assert report.problems[0].startswith("cron ignores this whole file because of line 2:")
    assert states(report) == {2: "ignored (bad line)", 3: "ignored (whole file)"}


def test_tabs_are_blanks() -> None:
    report = data_file("tabs-system", system=True)
    assert [(e.user, e.schedule, e.command) for e in report.entries] == [
        ("root", "0 4 * * *", "/usr/local/sbin/logrotate-extra"),
        ("www-data", "*/5 * * * *", "/usr/bin/php /var/www/cron.php"),
    ]
    assert all(e.runs for e in report.entries)


def test_missing_final_newline_ignores_the_whole_file() -> None:
    report = data_file("no-final-newline", system=True)
    assert report.ignored
    assert "Missing newline before EOF" in report.problems[0]
    assert states(report) == {2: "ignored (whole file)", 3: "ignored (bad line)"}
    assert by_line(report)[2].next_run is None


@pytest.mark.parametrize("tail", ["# a last comment", "   ", "\t# indented comment", ""], ids=repr)
def test_a_last_comment_or_blank_without_newline_is_fine(tail: str) -> None:
    report = inv("0 1 * * * root /x\n" + tail)
    assert not report.ignored and report.entries[0].runs


def test_env_line_without_final_newline_ignores_the_file() -> None:
    report = inv("0 1 * * * root /x\nFOO=bar")
    assert report.ignored and "line 2" in report.problems[0]


def test_one_bad_line_ignores_every_line_of_the_file() -> None:
    report = data_file("one-bad-line", system=True)
    assert report.problems == (
        "cron ignores this whole file because of line 3: minute: 61 is out of range 0-59",
    )
    assert states(report) == {
        2: "ignored (whole file)",
        3: "ignored (bad line)",
        4: "ignored (whole file)",
    }
    assert by_line(report)[2].problems == report.problems
    bad = by_line(report)[3]
    assert (bad.schedule, bad.user, bad.command) == (
        "",
        None,
        "61 * * * * root /opt/jobs/too-late.sh",
    )


def test_inline_secrets_are_masked_and_listed() -> None:
    report = data_file("inline-secrets", system=True)
    lines = by_line(report)
    assert lines[6].command == "mysqldump -uroot -p*** shop > /backup/shop.sql"
    assert lines[11].command == "sshpass -p *** ssh -p 2222 backup@nas 'df -h'"
    assert lines[18].command == "ssh -p 2222 backup@nas uptime"
    assert lines[19].command == "curl -p -x proxy:8080 https://example.com/"
    assert lines[20].command == "mysql -p shop < /opt/sql/nightly.sql"
    env = dict(lines[6].env)
    assert env == {
        "MAILTO": "",
        "API_TOKEN": "***",
        "AWS_SECRET_ACCESS_KEY": "***",
        "PWD": "/srv/batch",
    }
    kinds = {kind for entry in report.entries for kind, _ in entry.secrets}
    assert kinds >= {
        "env_assignment", "password_flag", "token_flag", "user_password", "url_credentials",
        "url_parameter", "aws_access_key_id", "auth_header",
    }  # fmt: skip
    assert ("password_flag", "mysqldump -p") in lines[6].secrets


def test_commented_out_jobs_are_found_and_prose_comments_are_not() -> None:
    report = data_file("commented-out", system=True)
    assert states(report) == {
        2: "runs",
        3: "commented-out",
        4: "commented-out",
        5: "commented-out",
    }
    assert [(e.schedule, e.user, e.command) for e in report.entries[1:]] == [
        ("0 3 * * *", "root", "/opt/jobs/retired.sh"),
        ("15 4 * * 1", "root", "/opt/jobs/weekly-old.sh --mode full"),
        ("@daily", "root", "/opt/jobs/daily-old.sh"),
    ]


def test_prose_pasted_into_a_crontab() -> None:
    report = data_file("prose", system=True)
    assert report.ignored
    assert "line 4" in report.problems[0]
    prose = by_line(report)[4]
    assert prose.command == "Please ask Kenji before changing the backup time"
    assert (prose.schedule, prose.user, prose.description) == ("", None, "")


def test_reversed_ranges_and_impossible_dates_are_accepted_but_never_run() -> None:
    report = data_file("broken-lines", system=True)
    assert not report.ignored and report.problems == ()
    lines = by_line(report)
    assert lines[2].state == "never runs" and lines[2].description == "never"
    assert "reversed range '5-1'" in lines[2].problems[0]
    assert lines[3].state == "never runs" and "never fires" in lines[3].problems[0]
    # vixie's OR rule: an emptied day-of-week leaves day-of-month alone in charge
    assert lines[4].runs and lines[4].description == "at 00:00 on day 1 of the month"
    assert lines[4].next_run == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert "reversed range 'sat-sun'" in lines[4].problems[0]
    # Debian reads 1-5-7 as 1-5
    assert lines[5].runs and lines[5].description == "at 12:00 on Monday through Friday"
    assert "as '1-5'" in lines[5].problems[0]


@pytest.mark.parametrize(
    ("schedule", "runs", "next_run"),
    [
        ("0 0 1,5-1 * *", True, datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
        ("0 0 5-1 * mon", True, datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
        ("0 0 5-1 * *", False, None),
        ("0 23-1 * * *", False, None),
        ("0 0 * * fri-mon", False, None),
        ("0 0 30 2 mon", True, datetime(2027, 2, 1, 0, 0, tzinfo=UTC)),  # Mondays of February
        ("* * 27-28-1 * *", True, datetime(2026, 11, 28, 12, 1, tzinfo=UTC)),
        ("* * */40-3 * *", True, datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),  # read as */40
    ],
)
def test_schedules_cron_accepts(schedule: str, runs: bool, next_run: Optional[datetime]) -> None:
    report = inv(f"{schedule} root /x\n")
    assert not report.ignored
    (entry,) = report.entries
    assert (entry.runs, entry.next_run) == (runs, next_run)


@pytest.mark.parametrize(
    "line",
    [
        "61 * * * * root /x",
        "*/0 * * * * root /x",
        "0 5/2 * * * root /x",
        "0 1,,2 * * * root /x",
        "0 1,2, * * * root /x",
        "0 0 L * * root /x",
        "0 0 ? * * root /x",
        "0 0 * * Monday root /x",
        "0 0 * * 8 root /x",
        "0 0 0 * * root /x",
        "0 0 1x * * root /x",
        "@DAILY root /x",
        "@ daily root /x",
        "@daily root",
        "@daily",
        "0 3 * * * root",
        "0 3 * * * nosuchuser /x",
        "0 3 * * * ROOT /x",
        "0 3 * * * root:root /x",
        "0 3 * * * /usr/bin/true",
        "0 * * * * * root /x",
        "E1=",
        "JUSTWORD",
        "\r",
    ],
    ids=repr,
)
def test_lines_that_make_cron_ignore_a_system_crontab(line: str) -> None:
    report = inv('MAILTO=""\n* * * * * root /ok\n' + line + "\n")
    assert report.ignored, report
    assert report.problems[0].startswith("cron ignores this whole file because of line 3")
    assert by_line(report)[2].state == "ignored (whole file)"


@pytest.mark.parametrize(
    "line",
    [
        "0 3 * * * root   ",
        "0 3 * * * root\t",
        "0 0 * * * root *foo",
        "* * * * * root %echo hi",
        "0 0 31 2 * root /x",
        "0 0 * * 5-1 root /x",
        "*/99 * * * * root /x",
        "007 * * * * root /x",
        "* * * JAN-DEC * root /x",
        "0 0 * * mon-fri/2 root /x",
        "0 0 * * 0-7 root /x",
        "1X=y",
        '"QN"=x',
    ],
    ids=repr,
)
def test_lines_cron_accepts_in_a_system_crontab(line: str) -> None:
    report = inv('MAILTO=""\n* * * * * root /ok\n' + line + "\n")
    assert not report.ignored, report.problems
    assert by_line(report)[2].runs


def test_user_crontab_rules() -> None:
    report = data_file("user-quirks", system=False, user="batch")
    assert not report.ignored
    lines = by_line(report)
    assert lines[2].state == "runs nothing" and lines[2].command == ""
    assert "6th time field" in lines[3].problems[0] and lines[3].runs
    assert "user name 'root'" in lines[4].problems[0]
    assert lines[5].runs and lines[5].next_run == datetime(2026, 11, 28, 13, 0, tzinfo=UTC)


def test_user_crontab_with_six_fields_is_ignored() -> None:
    report = data_file("user-six-fields", system=False, user="batch")
    assert report.ignored
    assert "starts with '*'" in report.problems[0]
    assert states(report) == {1: "ignored (bad line)", 2: "ignored (whole file)"}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("six-fields", "'*' cannot be a user name; a 6th time field?"),
        ("no-command", "nothing after the user 'root' (no command)"),
        ("missing-user", "'/opt/jobs/nightly.sh' cannot be a user name; the user field is missing"),
    ],
)
def test_broken_system_lines_name_their_reason(name: str, reason: str) -> None:
    report = data_file(name, system=True)
    assert report.ignored and reason in report.problems[0]


def test_unknown_user_only_checked_when_users_are_known() -> None:
    line = "0 3 * * * deploy /x\n"
    assert inv(line).ignored
    unknown = HostFacts(NOW, UTC, None)
    assert not inv(line, host=unknown).ignored


def test_cronsync_managed_file() -> None:
    report = data_file("cronsync-managed", system=True)
    assert report.managed and [e.state for e in report.entries] == ["managed"]
    assert (DATA / "cronsync-managed").read_text().startswith(HEADER)


def test_cron_tz_is_reported_and_next_run_stays_in_host_time() -> None:
    tokyo_host = HostFacts(NOW, ZoneInfo("Asia/Tokyo"), USERS)
    report = inv("CRON_TZ=Europe/Paris\n0 9 * * * root /x\n", host=tokyo_host)
    (entry,) = report.entries
    assert "CRON_TZ=Europe/Paris is ignored" in entry.problems[0]
    assert entry.next_run == datetime(2026, 11, 29, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_ignored_by_the_reader_marks_every_entry() -> None:
    crontab = CrontabFile(
        "/etc/cron.d/backup.sh",
        "0 1 * * * root /x\n",
        True,
        problems=("cron ignores this whole file: its name contains '.'",),
        ignored=True,
    )
    report = inventory_file(crontab, HOST)
    assert report.ignored and report.entries[0].state == "ignored (whole file)"
    assert report.entries[0].problems[0] == "cron ignores this whole file: its name contains '.'"


def test_unreadable_file() -> None:
    report = inventory_file(CrontabFile("/x", None, True, problems=("cannot read: x",)), HOST)
    assert not report.readable and report.entries == () and report.problems == ("cannot read: x",)


def test_no_secret_value_in_any_output() -> None:
    reports = [data_file(n, system=True) for n in SYSTEM_FILES]
    reports += [data_file(n, system=False, user="batch") for n in USER_FILES]
    dumped = json.dumps(
        [r.to_json() for r in reports] + [e.to_json() for r in reports for e in r.entries]
    )
    dumped += repr(reports)
    assert len(SECRETS) >= 15
    for secret in SECRETS:
        assert secret not in dumped, secret


def test_json_shape_of_an_entry() -> None:
    entry = by_line(data_file("crontab-l-dump", system=False, user="batch"))[13]
    data = entry.to_json()
    assert data["next_run"] == "2026-11-30T07:00:00+00:00"
    assert data["state"] == "runs" and data["env"] == {"MAILTO": "batch-owners@example.com"}
    assert json.loads(json.dumps(data)) == data


CRONISH = st.text(alphabet=" \t\r\n#%=\"'\\*/,-@01234567abcdmonsurtMAILTO:", max_size=300)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), CRONISH), st.booleans())
def test_arbitrary_text_never_crashes_the_parser(text: str, system: bool) -> None:
    report = inv(text, system=system)
    for entry in report.entries:
        assert entry.line >= 1
        assert not entry.runs or (not report.ignored and not entry.commented_out)
        json.dumps(entry.to_json())
