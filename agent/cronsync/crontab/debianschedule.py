"""A schedule as Debian's cron reads it, which is not always as written.

Pure. The rules follow Debian's cron 3.0pl1-162 as observed by running it (see FACTS.md):

* Accepted but never run: reversed ranges (``5-1``, ``fri-mon``: that item matches
  nothing, the rest of the list still counts) and dates that never occur (``31 2``).
* Debian reads ``1-5-7`` as ``1-5`` and ``*/5-10`` as ``*/5``: after a complete range,
  step or ``*``, a ``-`` and the rest of the field are skipped.
* A trailing ``\\r`` (CRLF line endings) on the last field is skipped.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Optional

from cronsync.core.errors import ScheduleError
from cronsync.core.schedule import CronSchedule, parse_schedule

_DEBIAN_JUNK = re.compile(r"(?:\*(?:/[0-9]+)?|[0-9A-Za-z]+-[0-9A-Za-z]+(?:/[0-9]+)?)(?=-)")
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")


@dataclass
class ScheduleReading:
    """What a schedule means to cron."""

    schedule: Optional[CronSchedule] = None  # None: never fires (or cron rejects it)
    error: Optional[str] = None  # cron rejects the line
    problems: list[str] = field(default_factory=list)


def read_debian_schedule(text: str) -> ScheduleReading:
    """Read a schedule as Debian cron does (see the module docstring).

    Args:
        text: the time fields as written (blank-separated) or a ``@`` macro.
    Returns:
        the reading: the effective schedule (None when it never fires or cron rejects
        it), why cron rejects the line (``error``) and what else to tell (``problems``).
        Never raises.
    """
    schedule, error, problems = _reading(text)
    return ScheduleReading(schedule, error, list(problems))


_Reading = tuple[Optional[CronSchedule], Optional[str], tuple[str, ...]]


# A crontab repeats its schedules, and the import reads each line's again (its plan, the
# evidence's log matching): one reading per distinct text. Cached as a tuple, so a
# caller changing its ScheduleReading changes no other caller's.
@functools.lru_cache(maxsize=4096)
def _reading(text: str) -> _Reading:
    when = ScheduleReading()
    if text.startswith("@"):
        try:
            when.schedule = parse_schedule(text)
        except ScheduleError as exc:
            when.error = exc.message
        return _frozen(when)
    fields = [_debian_field(part, when) for part in text.split(" ")]
    try:
        when.schedule = parse_schedule(" ".join(fields))
    except ScheduleError as exc:
        _accepted_anyway(fields, exc, when)
    return _frozen(when)


def _frozen(when: ScheduleReading) -> _Reading:
    return when.schedule, when.error, tuple(when.problems)


def _debian_field(text: str, when: ScheduleReading) -> str:
    """Drop what Debian cron skips in a field: a trailing CR, and ``-...`` after a
    complete range, step or ``*`` (``1-5-7`` is read as ``1-5``)."""
    kept = text.rstrip("\r")
    items = kept.split(",")
    for index, item in enumerate(items):
        match = _DEBIAN_JUNK.match(item)
        if match:
            kept = ",".join([*items[:index], match[0]])
            when.problems.append(
                f"cron reads the field '{text}' as '{kept}' (it skips the rest after '-')"
            )
            break
    return kept


def _accepted_anyway(fields: list[str], error: ScheduleError, when: ScheduleReading) -> None:
    """Classify a schedule error: reversed ranges and impossible dates are accepted by
    cron (and never match); anything else makes cron reject the line."""
    if "never fires" in error.message:
        when.problems.append(f"never runs: {error.message}")
        return
    if "reversed range" not in error.message:
        when.error = error.message
        return
    try:
        effective = _without_reversed(fields, when)
    except ScheduleError as exc:
        when.error = exc.message
        return
    if effective is None:
        return
    try:
        when.schedule = parse_schedule(effective)
    except ScheduleError as exc:
        when.problems.append(f"never runs: {exc.message}")


def _without_reversed(fields: list[str], when: ScheduleReading) -> Optional[str]:
    """Return the schedule with reversed-range items removed (cron's reading), or None
    when it can never fire. Raises ScheduleError for any other error in an item."""
    kept: list[Optional[str]] = []
    for index, text in enumerate(fields):
        good = []
        for item in text.split(","):
            probe = ["*"] * 5
            probe[index] = item
            try:
                parse_schedule(" ".join(probe))
                good.append(item)
            except ScheduleError as exc:
                if "reversed range" not in exc.message:
                    raise
                when.problems.append(exc.message)
        kept.append(",".join(good) if good else None)
    return _fill_empty_days(kept, fields, when)


def _fill_empty_days(
    kept: list[Optional[str]], fields: list[str], when: ScheduleReading
) -> Optional[str]:
    """An emptied day field matches nothing: under cron's OR rule (both day fields
    restricted) the other day field alone decides, which ``*`` expresses."""
    dom, dow = kept[2], kept[4]
    if any(part is None for part in kept[:2] + kept[3:4]) or (dom is None and dow is None):
        when.problems.append("never runs: a field has only reversed ranges")
        return None
    for empty, other in ((2, 4), (4, 2)):
        if kept[empty] is None:
            if fields[other].startswith("*"):
                when.problems.append(f"never runs: the {_FIELD_NAMES[empty]} matches nothing")
                return None
            kept[empty] = "*"
    return " ".join(part or "*" for part in kept)
