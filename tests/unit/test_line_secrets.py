"""A crontab line's secrets, whatever cron makes of the line (cronsync.secretscan.scan's
``find_line_secrets`` and cronsync.crontab.printable, where crontab text becomes text
cronsync shows), and the inventory built on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronsync.crontab.inventory import CrontabFile, HostFacts, inventory_file
from cronsync.crontab.printable import LineScans, Redactor, hide_in, read_line_secrets
from cronsync.secretscan.scan import LineScan, find_line_secrets, find_secrets, mask_findings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
HOST = HostFacts(NOW, ZoneInfo("UTC"), frozenset({"root", "alice"}))

# Commands whose secret only a detector that knows the program finds.
COMMANDS = [
    ("redis-cli -a p4ssZx31 FLUSHALL", "p4ssZx31"),
    ("mysqldump -uroot -pmyZx32 shop > /b/shop.sql", "myZx32"),
    ("sshpass -p sshZx33 ssh nas uptime", "sshZx33"),
    ("curl -s -u admin:curlZx34 https://ci.example.com/", "curlZx34"),
    ("sudo -u app redis-cli -a p4ssZx35 ping", "p4ssZx35"),
    ("zip -P zipZx36 /b/a.zip /srv/a", "zipZx36"),
]
# Everything cron (or a person reading the wrong format) may put before a command.
PREFIXES = [
    "",  # no schedule at all: cron rejects the line
    "0 9 * * * ",  # a user crontab
    "0 9 * * * root ",  # a system crontab
    "0 9 * * mon-frii root ",  # a field cron rejects
    "0 0 9 * * * root ",  # six time fields
    "0 9 * * ",  # four
    "@daily ",
    "@daily root ",
    "# 0 9 * * * root ",  # commented out
    "#0 9 * * * ",
    "  \t0 9\t* * *\troot\t",
    "* * * * * MYSQL_PWD=x9zz ",  # a system crontab read with no user field
]


@given(st.sampled_from(COMMANDS), st.sampled_from(PREFIXES))
def test_a_programs_secret_is_found_however_the_line_is_read(
    command: tuple[str, str], prefix: str
) -> None:
    text, value = command
    line = prefix + text
    assert value not in mask_findings(line, find_line_secrets(line))
    assert value not in read_line_secrets(line).shown()
    assert value in [f.value for f in find_secrets(text)]  # the command alone: found


def test_the_likely_reading_names_the_secret() -> None:
    line = "0 1 * * * root /opt/tools/sync --password 'syncZx37 pass'"
    named = find_line_secrets(line, line.index("/opt"))
    assert [(f.env_name, f.label, f.value) for f in named] == [
        ("SYNC_PASSWORD", "--password", "syncZx37 pass")
    ]


def test_environment_settings_as_cron_reads_them() -> None:
    assert read_line_secrets("DB_PASSWORD = 'hunterZx38'").shown() == "DB_PASSWORD = '***'"
    assert read_line_secrets('"API_TOKEN"="tokZx39"').shown() == '"API_TOKEN"="***"'
    assert read_line_secrets("RAILS_ENV = production").shown() == "RAILS_ENV = production"
    assert read_line_secrets("# DB_PASSWORD=hunterZx49").shown() == "# DB_PASSWORD=***"


def test_shown_masks_pieces_and_joins_overlapping_secrets() -> None:
    secrets = read_line_secrets("0 1 * * * root redis-cli -a abcZx40 x -a abcZx40")
    assert secrets.shown() == "0 1 * * * root redis-cli -a *** x -a ***"
    start = secrets.line.index("abcZx40")
    assert secrets.shown(start) == "*** x -a ***"
    assert secrets.cut_at(start + 2) == "redis-cli -a"
    assert [f.start for f in secrets.in_suffix(start)] == [0, len("abcZx40 x -a ")]


@dataclass(frozen=True)
class Inner:
    words: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class Outer:
    """A record with texts at every depth: a field added later is walked all the same."""

    name: str
    maybe: Optional[str]
    pairs: tuple[tuple[str, str], ...]
    inner: Inner
    listed: list[str]
    when: datetime


def test_hide_in_reaches_every_text_of_a_record() -> None:
    record = Outer("a-Zx41", "b Zx41", (("k", "Zx41"),), Inner(("Zx41!",), 3), ["xZx41"], NOW)
    hidden = hide_in(record, lambda text: text.replace("Zx41", "***"))
    assert hidden == Outer("a-***", "b ***", (("k", "***"),), Inner(("***!",), 3), ["x***"], NOW)


def test_a_value_found_on_one_line_is_hidden_where_it_shows_on_another() -> None:
    redactor = Redactor()
    for line in ["MYSQL_PWD=crossZx42", "0 1 * * * root echo crossZx42"]:
        redactor.add(read_line_secrets(line))
    record = Inner(("echo crossZx42",), 1)
    assert redactor.record(record) == Inner(("echo ***",), 1)
    quiet = Redactor()
    quiet.add(read_line_secrets("MYSQL_PWD=crossZx42"))
    assert quiet.record(record) is record  # the value shows nowhere unmasked: no walk


@pytest.mark.parametrize(
    ("text", "system", "hidden"),
    [
        ("* * * * * MYSQL_PWD=userZx43 mysqldump shop\n", True, "userZx43"),  # the user field
        ("0 9 * * * redis-cli -a rdZx44 x\n", True, "rdZx44"),  # wrong format
        ("0 9 * * * root redis-cli -a rdZx45 x\n", False, "rdZx45"),
        ("0 9 * * mon-frii root redis-cli -a rdZx46\n", True, "rdZx46"),
        ("DB_PASSWORD=envZx47\n0 1 * * * root echo envZx47 | tee /tmp/x\n", True, "envZx47"),
        ("0 1 * * * root echo --password=a\n0 2 * * * a --password=lnZx48 x\n", True, "lnZx48"),
    ],
)
def test_no_text_of_an_inventory_holds_a_secret(text: str, system: bool, hidden: str) -> None:
    crontab = CrontabFile("test", text, system, None if system else "alice")
    report = inventory_file(crontab, HOST)
    texts = repr(report)
    assert hidden not in texts
    assert report.entries and all("***" in entry.text for entry in report.entries[-1:])


def _lines_read_every_way() -> list[str]:
    """Each command behind each prefix, and the lines of the generated crontab (system)."""
    from helpers.crontabgen import generated_line

    lines = [prefix + command for prefix in PREFIXES for command, _secret in COMMANDS]
    lines += ["0 1 * * * root mysql --password shopdb < /srv/q.sql", "@daily root openssl -k x"]
    return lines + [generated_line(n) for n in range(14)]


@pytest.mark.parametrize("line", _lines_read_every_way())
def test_one_scan_gives_each_reading_as_a_scan_of_its_own(line: str) -> None:
    # the import reads a line at its command (the inventory) and at 0 (the masked digest
    # of its origin): one LineScan serves both, each as find_line_secrets alone finds it
    scan = LineScan(line)
    for command_at in sorted({0, *range(len(line) + 1)}, reverse=True):
        assert scan.findings(command_at) == find_line_secrets(line, command_at), command_at


def test_the_inventory_keeps_each_entrys_reading_at_0() -> None:
    lines = [
        "0 1 * * * root mysql --password shopdb < /srv/q.sql",
        "*/5 * * * * root mysqldump -uroot -ppw1secret shop > /b/s.sql",
        "0 2 * * * root true",
    ]
    crontab = CrontabFile("/etc/cron.d/x", "\n".join(lines) + "\n", True, None)
    scans: LineScans = {}
    report = inventory_file(crontab, HOST, scans)
    assert len(report.entries) == len(lines)
    for text in lines:  # the first: masked at 0 only (mysql --password prompts)
        assert scans[(text, 0)] == read_line_secrets(text, 0)
    assert read_line_secrets(lines[0], 0).findings
