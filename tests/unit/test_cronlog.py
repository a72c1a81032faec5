"""Reading cron's log lines as Debian writes them: rsyslog's traditional and RFC 3339
formats, ``journalctl -o short-iso`` and ``-o json``; cron's escaping of the command."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from cronsync.crontab.cronlog import (
    CMD,
    FAILED,
    NO_MTA,
    cron_printable,
    read_journal_text,
    read_syslog_text,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
# the time the log file was last written: the traditional format has no year
REFERENCE = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

TRADITIONAL = """\
Dec  6 23:59:59 batch-1 systemd[1]: Starting Daily apt download activities...
Dec  7 03:15:01 batch-1 CRON[1234]: (root) CMD (/usr/local/bin/backup.sh >> /var/log/b.log 2>&1)
Dec  7 03:15:01 batch-1 CRON[1233]: (CRON) info (No MTA installed, discarding output)
Dec  7 03:17:01 batch-1 CRON[1240]: (batch) CMD ([1241] cd / && run-parts --report /etc/cron.hourly)
Dec  7 03:20:01 batch-1 CRON[1250]: (CRON) error (grandchild #1251 failed with exit status 2)
Dec  7 03:25:01 batch-1 CRON[1260]: (batch) CMD (echo caf\\303\\251 ^I tab)
"""

RFC3339 = """\
2026-12-07T03:15:01.123456+01:00 batch-1 CRON[1234]: (root) CMD (/usr/local/bin/backup.sh)
2026-12-07T03:16:01.000000+01:00 batch-1 CRON[1235]: (root) CMD (/usr/local/bin/long-command --with
2026-12-07T03:17:02.000000+01:00 batch-1 kernel: [ 1.0] something else
"""


def test_traditional_lines_in_host_time_with_the_year_of_the_file() -> None:
    read = read_syslog_text(TRADITIONAL, BERLIN, REFERENCE)
    cmds = [e for e in read.events if e.kind == CMD]
    assert [(e.user, e.pid) for e in cmds] == [("root", 1234), ("batch", 1241), ("batch", 1260)]
    first = cmds[0]
    assert first.command == "/usr/local/bin/backup.sh >> /var/log/b.log 2>&1"
    assert first.at == datetime(2026, 12, 7, 2, 15, 1, tzinfo=UTC)  # 03:15 in Berlin
    assert not first.truncated
    # -L 8 logs the grandchild's pid before the command: it is not part of it
    assert cmds[1].command == "cd / && run-parts --report /etc/cron.hourly"
    assert cmds[1].pid == 1241
    # the period is every line's, not only cron's
    assert read.first == datetime(2026, 12, 6, 22, 59, 59, tzinfo=UTC)
    assert read.last == datetime(2026, 12, 7, 2, 25, 1, tzinfo=UTC)


def test_failures_and_the_missing_mta_are_events_too() -> None:
    read = read_syslog_text(TRADITIONAL, UTC, REFERENCE)
    failed = [e for e in read.events if e.kind == FAILED]
    assert [(e.pid, e.exit_status) for e in failed] == [(1251, 2)]
    assert [e.kind for e in read.events].count(NO_MTA) == 1


def test_a_december_line_in_a_january_file_is_last_year() -> None:
    read = read_syslog_text(
        "Dec 31 23:59:01 h CRON[1]: (root) CMD (true)\n", UTC, datetime(2027, 1, 1, 1, tzinfo=UTC)
    )
    assert read.events[0].at.year == 2026


def test_rfc3339_lines_and_a_cut_message() -> None:
    read = read_syslog_text(RFC3339, UTC, REFERENCE)
    cmds = [e for e in read.events if e.kind == CMD]
    assert cmds[0].at == datetime(2026, 12, 7, 2, 15, 1, 123456, tzinfo=UTC)
    assert cmds[1].truncated
    assert cmds[1].command == "/usr/local/bin/long-command --with"
    assert read.last == datetime(2026, 12, 7, 2, 17, 2, tzinfo=UTC)


def test_journal_json_export() -> None:
    lines = [
        {
            "__REALTIME_TIMESTAMP": "1796612101123456",
            "_HOSTNAME": "batch-1",
            "SYSLOG_IDENTIFIER": "CRON",
            "_PID": "1234",
            "MESSAGE": "(root) CMD (/usr/local/bin/backup.sh)",
        },
        # journald gives a message that is not valid UTF-8 as an array of bytes
        {
            "__REALTIME_TIMESTAMP": "1796612161000000",
            "SYSLOG_IDENTIFIER": "CRON",
            "_PID": "1240",
            "MESSAGE": list(b"(batch) CMD (echo \xff)"),
        },
        {
            "__REALTIME_TIMESTAMP": "1796612221000000",
            "SYSLOG_IDENTIFIER": "cron",
            "_PID": "400",
            "MESSAGE": "(CRON) INFO (Running @reboot jobs)",
        },
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    read = read_journal_text(text, UTC)
    cmds = [e for e in read.events if e.kind == CMD]
    assert cmds[0].at == datetime.fromtimestamp(1796612101.123456, UTC)
    assert cmds[0].command == "/usr/local/bin/backup.sh"
    assert cmds[1].command == "echo \ufffd"
    assert read.first == cmds[0].at
    assert read.last == datetime.fromtimestamp(1796612221, UTC)


def test_journal_short_iso_both_offset_spellings() -> None:
    text = (
        "-- Journal begins at Mon 2026-11-30 00:00:01 UTC. --\n"
        "2026-12-07T03:15:01+0000 batch-1 CRON[1234]: (root) CMD (true)\n"
        "2026-12-07T04:15:01+01:00 batch-1 CRON[1235]: (root) CMD (true)\n"
    )
    read = read_journal_text(text, UTC)
    assert [e.at for e in read.events] == [
        datetime(2026, 12, 7, 3, 15, 1, tzinfo=UTC),
        datetime(2026, 12, 7, 3, 15, 1, tzinfo=UTC),
    ]


def test_cron_printable_is_cron_s_mkprint() -> None:
    assert cron_printable("a\tb\x7fc") == "a^Ib^?c"
    assert cron_printable("café") == "caf\\303\\251"
    assert cron_printable("plain % text") == "plain % text"


def _mkprint(text: str) -> str:
    """cron's mkprint, byte by byte (what cron_printable must equal)."""
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        if byte < 0x20 or byte == 0x7F:
            out.append("^?" if byte == 0x7F else "^" + chr(byte + 0x40))
        else:
            out.append(chr(byte) if byte < 0x7F else f"\\{byte:03o}")
    return "".join(out)


@pytest.mark.parametrize(
    "text", ["", "/usr/bin/find /tmp -mtime +7", "a\tb", "x\x7f", "é", "~ ~", " \x1f", "\udcff"]
)
def test_cron_printable_of_plain_text_is_the_text_itself(text: str) -> None:
    # the evidence step prints every entry's command: printable ASCII is not copied
    assert cron_printable(text) == _mkprint(text)
    if text.isascii() and text.isprintable():
        assert cron_printable(text) is text


# Captured on Debian 12 from cron 3.0pl1-162 (`dpkg -s cron`), run as `cron -f -L 15`
# and, for the last minute, `-L 5` (no pids), with a test file in /etc/cron.d; the
# datagrams cron sent to /dev/log, written here as rsyslog's default RFC 3339 file
# format writes them (cron's tag and message verbatim; rsyslog adds the host name). The
# crontab: `printf 'x<TAB>y' > /dev/null %line1%line2`, `echo 50\% café > /dev/null`,
# `sh -c 'exit 3'`, `sh -c 'kill -TERM $$'`, and /bin/true as root and as nobody.
CAPTURED_ROWS = [  # (time, tag, message)
    ("14:03:35", "cron[25642]", "(CRON) INFO (pidfile fd = 3)"),
    (
        "14:04:01",
        "CRON[31128]",
        "pam_unix(cron:session): session opened for user nobody(uid=65534) by (uid=0)",
    ),
    ("14:04:01", "CRON[31128]", "(nobody) CMD ([31149] /bin/true >/dev/null 2>&1)"),
    ("14:04:01", "CRON[31132]", "(root) CMD ([31138] sh -c 'exit 3')"),
    ("14:04:01", "CRON[31130]", "(root) CMD ([31152] echo 50% caf\\303\\251 > /dev/null)"),
    ("14:04:01", "CRON[31130]", "(root) END ([31152] echo 50% caf\\303\\251 > /dev/null)"),
    ("14:04:01", "CRON[31132]", "(CRON) error (grandchild #31138 failed with exit status 3)"),
    ("14:04:01", "CRON[31132]", "(root) END ([31138] sh -c 'exit 3')"),
    ("14:04:01", "CRON[31131]", "(root) CMD ([31155] printf 'x^Iy' > /dev/null )"),
    ("14:04:01", "CRON[31131]", "(CRON) error (grandchild #31160 terminated by signal 13)"),
    ("14:04:01", "CRON[31131]", "(root) END ([31155] printf 'x^Iy' > /dev/null )"),
    ("14:04:01", "CRON[31133]", "(root) CMD ([31156] /bin/true)"),
    ("14:04:01", "CRON[31133]", "(root) END ([31156] /bin/true)"),
    ("14:05:42", "cron[21746]", "Error: command too long; while reading /etc/cron.d/r1caplen999"),
    (
        "14:05:42",
        "cron[21746]",
        "(*system*r1caplen999) ERROR (Syntax error, this crontab file will be ignored)",
    ),
    ("14:06:01", "CRON[23607]", "(root) CMD (sh -c 'exit 3')"),
    ("14:06:01", "CRON[23609]", "(root) CMD (sh -c 'kill -TERM $$')"),
    ("14:06:01", "CRON[23605]", "(CRON) error (grandchild #23609 failed with exit status 143)"),
    ("14:06:01", "CRON[23606]", "(CRON) error (grandchild #23607 failed with exit status 3)"),
]
CAPTURED = "".join(
    f"2026-12-07T{at}.000000+00:00 cronhost {tag}: {message}\n"
    for at, tag, message in CAPTURED_ROWS
)
# The same capture: a 997-byte command of 490 "é" is logged whole (3,991 bytes), each
# byte as \\ooo; cron refuses a command of 999 bytes or more ("command too long", the
# whole file ignored), so a CMD message stays far below rsyslog's 8 KiB limit.
CAPTURED_LONG = (
    "2026-12-07T14:04:01.000000+00:00 cronhost CRON[31126]: (root) CMD ([31135] echo "
    + "\\303\\251" * 490
    + " > /dev/null)\n"
)


def test_lines_captured_from_debian_cron() -> None:
    read = read_syslog_text(CAPTURED + CAPTURED_LONG, UTC, REFERENCE)
    cmds = [(e.pid, e.user, e.command) for e in read.events if e.kind == CMD]
    assert cmds[:5] == [
        (31149, "nobody", "/bin/true >/dev/null 2>&1"),
        (31138, "root", "sh -c 'exit 3'"),
        (31152, "root", "echo 50% caf\\303\\251 > /dev/null"),
        (31155, "root", "printf 'x^Iy' > /dev/null "),  # the blank before % kept
        (31156, "root", "/bin/true"),
    ]
    # -L 5 (no -L 8): the grandchild logs CMD itself, so its pid is the one a failure names
    assert cmds[5:7] == [
        (23607, "root", "sh -c 'exit 3'"),
        (23609, "root", "sh -c 'kill -TERM $$'"),
    ]
    assert cmds[-1][2] == "echo " + "\\303\\251" * 490 + " > /dev/null"
    assert not any(e.truncated for e in read.events)
    failed = [(e.pid, e.exit_status, e.signal) for e in read.events if e.kind == FAILED]
    assert failed == [(31138, 3, None), (31160, None, 13), (23609, 143, None), (23607, 3, None)]
    assert read.first == datetime(2026, 12, 7, 14, 3, 35, tzinfo=UTC)
