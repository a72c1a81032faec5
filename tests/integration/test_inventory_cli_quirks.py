"""``cronsync inventory`` on crontabs cron runs but the host misreads
(tests/data/crontabs/percent-in-constructs, line-continuation), and the shell reader
behind the % check held against the real /bin/sh (``sh -n``: parse only, run nothing).
"""

from __future__ import annotations

import argparse
import json
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.cli.inventory import add_inventory_verb
from cronsync.crontab.line import split_percent
from cronsync.crontab.shellread import open_construct, percent_cut
from helpers.crontabdata import DATA


def run_inventory(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")
    add_inventory_verb(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
    args = parser.parse_args(["inventory", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out + err


def sh_parses(text: str) -> bool:
    done = subprocess.run(["/bin/sh", "-n", "-c", text], capture_output=True, timeout=10)
    return done.returncode == 0


def test_inventory_reports_percent_cuts_on_entries_cron_still_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = DATA / "percent-in-constructs"
    argv = [str(path), "--user", "batch", "--any-users", "--json"]  # batch: not this host's
    code, out = run_inventory(argv, capsys)
    assert code == 0  # every entry runs (and five fail, every time)
    entries = {e["line"]: e for e in json.loads(out)["entries"]}
    assert all(e["state"] == "runs" for e in entries.values())
    cut = {n for n, e in entries.items() if any("unescaped %" in p for p in e["problems"])}
    assert cut == {5, 6, 7, 8, 9}
    assert entries[5]["problems"][-1] == (
        "an unescaped % cuts the command inside $( … ): cron runs `tar czf "
        "/backup/www-$(date +`, which the shell cannot parse, every time — write \\% for a "
        "literal %"
    )
    assert "inside $(( … ))" in entries[6]["problems"][-1]
    assert "inside single quotes" in entries[8]["problems"][-1]
    assert "inside backticks" in entries[9]["problems"][-1]
    expanded = "PATH=$PATH:/opt/bin: cron does not expand $ in environment lines"
    assert all(any(expanded in p for p in e["problems"]) for e in entries.values())
    for number in cut:  # what the inventory says cron runs, the shell refuses
        assert not sh_parses(entries[number]["shell_command"])
    assert sh_parses(entries[11]["shell_command"])  # date +%s: cut, but valid shell


def test_inventory_says_cron_has_no_line_continuation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [str(DATA / "line-continuation"), "--user", "batch", "--any-users"]
    code, out = run_inventory(argv, capsys)
    assert code == 1
    assert (
        "cron ignores this whole file because of line 3: only 1 of the 5 time fields (line 2 "
        "ends with \\, but cron has no line continuation: this line is read on its own)"
    ) in out
    assert "line-continuation:2: the command ends with \\: cron has no line continuation" in out


# --- the shell reader against /bin/sh ---------------------------------------------------

PIECES = [
    "echo", " ", " ", "x", "/opt/a.sh", "'", '"', "$(", "$((", "${HOME", "${x:-", "}", ")",
    "(", "))", "`", "\\", "; ", " && ", " || ", " | ", " &", "if ", "then ", "; fi",
    "case $x in ", "a) ", ";; esac", "for i in 1 2", "; do ", "; done", "while true", "{ ",
    "; }", " #", "date +", "RANDOM ", "+ 1", "-printf '", "!", " > /tmp/x", "2>&1",
]  # fmt: skip


@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=10))
@settings(max_examples=300, deadline=None)
def test_what_the_reader_calls_open_the_shell_cannot_parse(pieces: list[str]) -> None:
    text = "".join(pieces)
    if open_construct(text) is not None:
        assert not sh_parses(text), text


@pytest.mark.parametrize(
    "command",
    [
        "tar czf /b/www-$(date +%F).tgz /var/www",
        "sleep $(( ( RANDOM % 600 ) + 1 ))m && /opt/report.sh",
        'mail -s "Report $(date +%F)" root%body',
        "find /var/log -printf '%p\\n'",
        "echo `date +%s` > /tmp/x",
        "if true; then echo 50%; fi",
        "[ $(date +%d) -eq 1 ] && /opt/monthly.sh",
    ],
)
def test_every_cut_the_inventory_reports_breaks_the_shell(command: str) -> None:
    cut = percent_cut(command)
    assert cut is not None
    assert not sh_parses(cut.runs)
    assert sh_parses(split_percent(command.replace("%", "\\%"))[0])  # escaped, it works
