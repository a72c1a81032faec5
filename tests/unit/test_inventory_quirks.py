"""What cron runs but the host does not expect (cronsync.crontab.line, cronsync.crontab.inventory):
an unescaped % that cuts a command inside a shell construct, environment values with
``$``, and lines that look continued with a trailing backslash.

Whether /bin/sh really cannot parse what ``open_construct`` calls open is checked
against dash in tests/integration/test_inventory_cli_quirks.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.crontab.inventory import CrontabFile, HostFacts, inventory_file
from cronsync.crontab.line import split_percent
from cronsync.crontab.records import FILE_IGNORED, PERCENT_CUT, REJECTED, FileInventory
from cronsync.crontab.shellread import escape_percents, open_construct, percent_cut

HOST = HostFacts(datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc), ZoneInfo("UTC"))

# --- the shell reader -----------------------------------------------------------------

OPEN = [
    ("tar czf /b/www-$(date +", "$("),
    ("sleep $(( ( RANDOM ", "$(("),
    ("sleep $((RANDOM", "$(("),
    ("echo ${x:-", "${"),
    ("echo `date +", "`"),
    ("printf '", "'"),
    ('mail -s "Report ', '"'),
    ('mail -s "Report $(date +', "$("),
    ("(cd /x; date +", "("),
    ("{ date +", "{"),
    ("if [ -f x ]; then echo 5", "if"),
    ("for f in a b; do echo ", "loop"),
    ("while read l; do echo ", "loop"),
    ("case $(date +\\%u) in 1) echo ", "case"),
    ("/opt/x.sh && ", "&&"),
    ("/opt/x.sh || ", "||"),
    ("/opt/x.sh | ", "|"),
    ("echo $(echo # a comment)", "$("),
]
CLOSED = [
    "",
    "date +",
    "mail -s hi root",
    "tar czf /b/www-$(date +%F).tgz /var/www",
    "echo $(( (1 + 2) * 3 ))",
    "echo ${HOME} ${x:-'a b'} \"${y}\"",
    "echo 'it''s' \"a 'b'\" \\' \\\" \\(",
    "echo `date` $(echo `id`)",
    "{ a; b; } > f",
    "if true; then echo 1; else echo 2; fi",
    "for f in a b; do echo $f; done",
    "case x in a) echo a;; (b) echo b;; esac",
    "a & b; c && d || e | f",
    "echo x # 'an unclosed quote in a comment",
    "echo a{b,c} x{ }y ! z",
    "echo done fi esac then",  # reserved words as arguments
    "echo `echo # a comment ends at the backtick`",
]


@pytest.mark.parametrize(("text", "construct"), OPEN)
def test_open_construct_names_the_innermost_open_one(text: str, construct: str) -> None:
    assert open_construct(text) == construct


@pytest.mark.parametrize("text", CLOSED)
def test_open_construct_is_none_where_the_shell_may_end(text: str) -> None:
    assert open_construct(text) is None


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_open_construct_never_fails(text: str) -> None:
    assert open_construct(text) is None or isinstance(open_construct(text), str)


# --- percent_cut ----------------------------------------------------------------------


def test_a_percent_inside_a_substitution_cuts_it() -> None:
    cut = percent_cut("tar czf /b/www-$(date +%F).tgz /var/www")
    assert cut is not None
    assert (cut.construct, cut.runs, cut.literal, cut.fixable) == (
        "$(",
        "tar czf /b/www-$(date +",
        (23,),
        True,
    )
    assert cut.where == "inside $( … )"


def test_percents_meant_literally_are_told_from_the_real_stdin() -> None:
    command = 'mail -s "Report $(date +%F) 100%" root%body%'
    cut = percent_cut(command)
    assert cut is not None and cut.fixable
    assert cut.literal == (command.index("%F"), command.index('%"'))
    shell, stdin = split_percent(escape_percents(command, cut.literal))
    assert shell == 'mail -s "Report $(date +%F) 100%" root'
    assert stdin == "body\n"


@pytest.mark.parametrize(
    "command",
    [
        "date +%s > /tmp/stamp",  # cut outside every construct: valid shell (stdin)
        "mail -s hi root%body",
        "tar czf /b/www-$(date +\\%F).tgz /var/www",  # escaped: no cut
        "echo 100\\%",
        "printf '\\%s\\n' a",
        "/opt/x.sh",
    ],
)
def test_no_cut_inside_a_construct(command: str) -> None:
    assert percent_cut(command) is None


def test_a_line_broken_beyond_the_percent_is_not_fixable() -> None:
    cut = percent_cut('echo "unclosed %s')
    assert cut is not None and cut.construct == '"' and not cut.fixable


def test_escape_percents_puts_a_backslash_before_each_position() -> None:
    assert escape_percents("a%b%c", (1, 3)) == "a\\%b\\%c"
    assert escape_percents("a%b", ()) == "a%b"


# --- the inventory --------------------------------------------------------------------


def inv(text: str, *, system: bool = False) -> FileInventory:
    return inventory_file(CrontabFile("t", text, system, None if system else "alice"), HOST)


def problems(report: FileInventory, line: int) -> list[str]:
    return next(list(e.problems) for e in report.entries if e.line == line)


def test_a_cut_command_is_reported_but_still_runs() -> None:
    report = inv(
        "0 0 * * * tar czf /b/www-$(date +%F).tgz /var/www\n"
        "25 6 * * * sleep $(( ( RANDOM % 600 ) + 1 ))m && cmd\n"
        "0 7 * * * mail -s hi root%body\n"
    )
    first, second, third = report.entries
    assert first.runs and first.state == "runs"
    assert first.problems == (
        f"{PERCENT_CUT} inside $( … ): cron runs `tar czf /b/www-$(date +`, which the "
        "shell cannot parse, every time — write \\% for a literal %",
    )
    assert second.runs and "inside $(( … )): cron runs `sleep $(( ( RANDOM `" in second.problems[0]
    assert third.problems == ()


def test_a_cut_shows_masked_secrets_and_only_the_end_of_a_long_command() -> None:
    long = "x" * 100
    report = inv(
        f"0 0 * * * mysql -pHunter2secret -e \"select '%'\"\n0 1 * * * echo {long} `date +%s`\n"
    )
    first, second = (e.problems[0] for e in report.entries)
    assert "Hunter2secret" not in first and "mysql -p***" in first
    assert f"cron runs ``…{('x' * 100 + ' `date +')[-60:]}``" in second


def test_a_cut_is_not_reported_on_a_rejected_or_commented_line() -> None:
    report = inv(
        "61 0 * * * root echo $(date +%F)\n# 0 1 * * * root echo $(date +%F)\n", system=True
    )
    rejected, commented = report.entries
    assert rejected.problems[0].startswith(REJECTED)
    assert not any(PERCENT_CUT in p for p in rejected.problems)
    assert commented.commented_out and commented.problems == ()


@pytest.mark.parametrize(
    ("setting", "reported"),
    [
        ("PATH=$PATH:/opt/bin", True),
        ("PATH=/opt/bin:${PATH}", True),
        ("STAMP=$(date +\\%F)", True),
        ("HOME=~/work", False),
        ("PRICE=5$", False),  # nothing a shell would expand
        ("DB_PASSWORD=abc$def", False),  # a secret: its value is never shown
    ],
)
def test_env_values_with_dollar_are_not_expanded_by_cron(setting: str, reported: bool) -> None:
    report = inv(f"{setting}\n0 0 * * * /opt/x.sh\n")
    found = [p for p in problems(report, 2) if "cron does not expand" in p]
    if reported:
        assert found == [
            f"{setting}: cron does not expand $ in environment lines, so the job gets this "
            "text literally: write the value in full"
        ]
    else:
        assert found == []
        assert all("abc$def" not in p for p in problems(report, 2))


def test_an_env_value_reset_without_dollar_is_no_longer_reported() -> None:
    report = inv("PATH=$PATH:/opt\n0 0 * * * a\nPATH=/usr/bin:/bin\n0 1 * * * b\n")
    assert any("$PATH:/opt" in p for p in problems(report, 2))
    assert problems(report, 4) == []


CONTINUED = (
    " (line {n} ends with \\, but cron has no line continuation: this line is read on its own)"
)


@pytest.mark.parametrize(
    ("text", "line", "error"),
    [
        (
            "0 1 * * * /opt/x.sh --all \\\n    --verbose\n",
            2,
            "only 1 of the 5 time fields" + CONTINUED.format(n=1),
        ),
        (
            "0 1 * * * root /opt/x.sh \\ \r\nroot\n",
            2,
            "only 1 of the 5 time fields" + CONTINUED.format(n=1),
        ),
        (
            "0 1 * * * root /opt/x.sh \\\n    --to /srv\n",
            2,
            "only 2 of the 5 time fields" + CONTINUED.format(n=1),
        ),
        ("0 1 * * * root /opt/x.sh \\\n    \n0 2 * *\n", 3, "only 4 of the 5 time fields"),
    ],
)
def test_a_line_after_a_trailing_backslash_says_cron_has_no_continuation(
    text: str, line: int, error: str
) -> None:
    report = inv(text, system="root" in text)
    assert problems(report, line) == [f"{REJECTED}: {error}"]
    assert report.problems[0] == f"{FILE_IGNORED} because of line {line}: {error}"


def test_a_command_ending_in_a_backslash_is_told_so() -> None:
    report = inv("0 1 * * * /opt/x.sh --all \\\n0 2 * * * /opt/y.sh \\\\\n")
    assert any("cron has no line continuation" in p for p in problems(report, 1))
    assert problems(report, 2) == []  # an escaped backslash ends it


@given(st.text(max_size=60), st.booleans())
@settings(max_examples=200, deadline=None)
def test_arbitrary_lines_never_crash_the_new_checks(line: str, system: bool) -> None:
    prefix: Optional[str] = "0 0 * * * root " if system else "0 0 * * * "
    inv(f"A=$B\n{prefix}{line}\\\n{line}\n", system=system)


# --- cron's command length ------------------------------------------------------------


def test_a_command_of_999_bytes_or_more_makes_cron_ignore_the_whole_file() -> None:
    """Observed with cron 3.0pl1-162 (Debian 12): a 998-byte command is read; one of 999
    logs "Error: command too long" and "Syntax error, this crontab file will be
    ignored". Bytes count, not characters (é is two)."""

    def cron_d(command: str) -> FileInventory:
        text = f"0 3 * * * root /bin/true\n59 23 31 12 * root {command}\n"
        return inventory_file(CrontabFile("/etc/cron.d/long", text, True), HOST)

    def command(size: int) -> str:
        return "echo " + "C" * (size - len("echo  > /dev/null")) + " > /dev/null"

    assert all(e.runs for e in cron_d(command(998)).entries)
    report = cron_d(command(999))
    assert report.ignored and "command too long" in report.problems[0]
    assert [e.runs for e in report.entries] == [False, False]
    assert cron_d("echo " + "é" * 497).ignored  # 999 bytes, 502 characters
