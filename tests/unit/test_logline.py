"""The agent's and the broker's log lines: ``<N>`` for the journal, a timestamp elsewhere.

The journal is recognised as systemd documents it: ``$JOURNAL_STREAM`` holds the device
and inode of the stream, compared here with real files' ``fstat``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

import pytest

from cronsync.host.logline import (
    DEBUG,
    ERROR,
    INFO,
    WARNING,
    LogWriter,
    format_lines,
    journal_stream_is,
)
from helpers.loglines import agent_line, journal_line

NOW = datetime(2026, 12, 7, 16, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "out.log").open("w", encoding="utf-8") as handle:
        yield handle


def identity(handle: TextIO) -> str:
    info = os.fstat(handle.fileno())
    return f"{info.st_dev}:{info.st_ino}"


def written(stream: TextIO, monkeypatch: pytest.MonkeyPatch, journal: str | None) -> str:
    """What a writer on ``stream`` writes for one line at each level."""
    if journal is None:
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    else:
        monkeypatch.setenv("JOURNAL_STREAM", journal)
    log = LogWriter("cronsync agent", lambda: stream, clock=lambda: NOW)
    for level, word in ((ERROR, "e"), (WARNING, "w"), (INFO, "i"), (DEBUG, "d")):
        log(f"said {word}", level)
    log("plain")
    return Path(stream.name).read_text(encoding="utf-8")


def test_under_the_journal_each_line_begins_with_its_priority(
    stream: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = written(stream, monkeypatch, identity(stream))

    assert text.splitlines() == [
        "<3>cronsync agent: said e",
        "<4>cronsync agent: said w",
        "<6>cronsync agent: said i",
        "<7>cronsync agent: said d",
        "<6>cronsync agent: plain",
    ]
    assert re.match(journal_line("cronsync agent", "said w", "warning"), text.splitlines()[1])


def test_elsewhere_a_line_has_a_utc_timestamp_and_a_level_word(
    stream: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = written(stream, monkeypatch, None)

    assert text.splitlines() == [
        "2026-12-07T16:00:00Z cronsync agent: error: said e",
        "2026-12-07T16:00:00Z cronsync agent: warning: said w",
        "2026-12-07T16:00:00Z cronsync agent: said i",
        "2026-12-07T16:00:00Z cronsync agent: debug: said d",
        "2026-12-07T16:00:00Z cronsync agent: plain",
    ]
    lines = text.splitlines()
    assert re.match(agent_line("said e", "error"), lines[0])
    assert not re.match(agent_line("said e", "warning"), lines[0])
    assert re.match(agent_line("said i"), lines[2])
    assert re.match(agent_line("said w", "any"), lines[1])


@pytest.mark.parametrize(
    "variable",
    ["other", "12", "12:", ":34", "a:b", "", "1:2:3"],
)
def test_a_journal_stream_that_is_not_this_stream_gives_timestamps(
    stream: TextIO, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    """A variable naming another file (inherited by a process whose stderr was then
    redirected, say) or one that is malformed: not the journal."""
    if variable == "other":
        with (tmp_path / "other").open("w") as other:
            variable = identity(other)
    text = written(stream, monkeypatch, variable)

    assert all(line.startswith("2026-12-07T16:00:00Z ") for line in text.splitlines()), text


def test_journal_stream_is_needs_both_device_and_inode(stream: TextIO) -> None:
    info = os.fstat(stream.fileno())
    fd = stream.fileno()

    assert journal_stream_is(fd, f"{info.st_dev}:{info.st_ino}")
    assert not journal_stream_is(fd, f"{info.st_dev}:{info.st_ino + 1}")
    assert not journal_stream_is(fd, f"{info.st_dev + 1}:{info.st_ino}")
    assert not journal_stream_is(fd, None)
    assert not journal_stream_is(-1, f"{info.st_dev}:{info.st_ino}")  # no such descriptor


def test_a_stream_without_a_descriptor_gets_timestamps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:1")
    buffer = io.StringIO()
    LogWriter("cronsync broker", lambda: buffer, clock=lambda: NOW)("listening", INFO)

    assert buffer.getvalue() == "2026-12-07T16:00:00Z cronsync broker: listening\n"


def test_each_line_of_a_message_keeps_the_level() -> None:
    """A message of several lines (a git error, say): none of them falls to the journal's
    default priority, and none loses its prefix in a file."""
    text = format_lines("cronsync agent", "sync failed:\nfatal: x\n", ERROR, journald=True, now=NOW)
    assert text == "<3>cronsync agent: sync failed:\n<3>cronsync agent: fatal: x\n"
    assert format_lines("t", "", INFO, journald=True, now=NOW) == "<6>t: \n"


def test_the_timestamp_is_utc_whatever_the_zone_of_the_clock() -> None:
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    assert format_lines("t", "m", INFO, journald=False, now=tokyo).startswith(
        "2026-12-07T16:00:00Z t: m"
    )


@pytest.mark.parametrize("level", [-1, 8])
def test_a_level_outside_syslog_is_refused(level: int) -> None:
    with pytest.raises(ValueError, match="not a syslog priority"):
        format_lines("t", "m", level, journald=True, now=NOW)
