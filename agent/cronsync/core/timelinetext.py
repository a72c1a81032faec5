"""The terminal view of a timeline (pure): one row per job, one column per slot.

A cell shows how many runs start in its slot (``1``-``9``, ``#`` for ten or more), ``!``
when a run starts while the job's previous run is still going (an overlap), ``-`` while a
run started earlier is going, ``.`` for nothing. A ``load`` row counts the jobs starting
in each slot; the busiest slots and the jobs left out are named below. Colour (ANSI) only
when asked for.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from datetime import datetime, timedelta

from cronsync.core.timeline import (
    DAY_NAMES,
    HISTORY,
    Cells,
    Timeline,
    Window,
    busiest_slots,
    choose_slot_minutes,
    host_time,
    lane_cells,
    left_out_summary,
    load_per_slot,
    same_clock,
    slot_count,
    slot_label,
    slot_start,
)

MAX_LABEL = 34
BUSIEST = 3
_HOUR_STEPS = (1, 2, 3, 4, 6, 12, 24)
_RESET = "\x1b[0m"
_COLOURS = {"!": "\x1b[1;31m", "-": "\x1b[33m", ".": "\x1b[2m", "busy": "\x1b[1;35m"}
_START_COLOUR = "\x1b[32m"


def render_text(timeline: Timeline, width: int, colour: bool) -> str:
    """Draw ``timeline`` in at most ``width`` columns where it can (the widest slot of a
    week and a short label need about 40).

    Args:
        timeline: the layout. width: the terminal's columns. colour: use ANSI colours.

    Returns:
        The lines, joined with newlines (no trailing newline).
    """
    window = timeline.window
    zones = [_shown_zone(lane.zone, window) for lane in timeline.lanes]
    longest = max([len(_label(lane.job, z)) for lane, z in zip(timeline.lanes, zones)] + [4])
    label_width = min(longest, MAX_LABEL, width // 3)
    minutes = choose_slot_minutes(window, width - label_width - 2)
    lines = [_header(timeline, minutes)]
    lines += _rulers(window, minutes, label_width)
    for zone, lane in zip(zones, timeline.lanes):
        cells = _cells_text(lane_cells(lane, window, minutes), colour)
        lines.append(f"{_fit_label(lane.job, zone, label_width):<{label_width}} |{cells}")
    load = load_per_slot(timeline, minutes)
    busiest = busiest_slots(load, BUSIEST)
    lines.append(f"{'load':<{label_width}} |{_load_text(load, set(busiest), colour)}")
    for slot in busiest:
        names = ", ".join(load[slot])
        noun = "job starts" if len(load[slot]) == 1 else "jobs start"
        line = f"busiest: {slot_label(window, minutes, slot)}: {len(load[slot])} {noun} ({names})"
        lines.append(_fit(line, width))
    if not timeline.lanes:
        lines.append("no job to draw")
    summary = left_out_summary(timeline.left_out)
    lines += textwrap.wrap(summary, width, subsequent_indent="  ") if summary else []
    lines += textwrap.wrap(_legend(timeline), width, subsequent_indent="  ")
    return "\n".join(lines)


def _shown_zone(zone: str, window: Window) -> str:
    """The job's zone, or '' when it keeps the host's clock."""
    return "" if same_clock(zone, window.host_zone, window.day.year) else zone


def _label(job: str, zone: str) -> str:
    return f"{job} ({zone})" if zone else job


def _fit_label(job: str, zone: str, width: int) -> str:
    """The row's label in ``width``: the name shortened before the zone is."""
    label = _label(job, zone)
    room = width - len(zone) - 3
    if len(label) <= width or not zone or room < 8:
        return _fit(label, width)
    return _label(_fit(job, room), zone)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "~"


def _header(timeline: Timeline, minutes: int) -> str:
    window = timeline.window
    last = window.day + timedelta(days=window.days - 1)
    span = f"{window.day}" if window.days == 1 else f"{window.day} to {last}"
    what = "recorded runs" if timeline.source == HISTORY else "scheduled runs"
    return f"{what}, {span}, host time {window.host_zone}, one column = {_minutes(minutes)}"


def _minutes(minutes: int) -> str:
    return f"{minutes} minutes" if minutes < 60 else f"{minutes // 60} h"


def _rulers(window: Window, minutes: int, label_width: int) -> list[str]:
    """The hour ruler (and, over several days, a day ruler above it)."""
    count = slot_count(window, minutes)
    starts = [host_time(window, slot_start(window, minutes, i)) for i in range(count)]
    step = next((s for s in _HOUR_STEPS if s * 60 / minutes >= 3), 24)
    hours = _place(count, ((i, f"{t:%H}") for i, t in enumerate(starts) if _on_hour(t, step)))
    lines = [f"{'':<{label_width}} |{hours}"]
    if window.days > 1:
        days = (
            (i, f"{DAY_NAMES[t.weekday()]} {t:%d}")
            for i, t in enumerate(starts)
            if i == 0 or t.date() != starts[i - 1].date()
        )
        lines.insert(0, f"{'':<{label_width}}  {_place(count, days)}")
    return lines


def _on_hour(when: datetime, step: int) -> bool:
    return when.minute == 0 and when.hour % step == 0


def _place(count: int, marks: Iterable[tuple[int, str]]) -> str:
    """Write each (column, text) mark where it does not run into the one before."""
    row = [" "] * count
    free = 0
    for column, text in marks:
        if column >= free and column + len(text) <= count:
            row[column : column + len(text)] = list(text)
            free = column + len(text) + 1
    return "".join(row).rstrip()


def _cell(starts: int, busy: bool, overlap: bool) -> str:
    if overlap:
        return "!"
    if starts:
        return str(starts) if starts < 10 else "#"
    return "-" if busy else "."


def _paint(char: str, code: str, colour: bool) -> str:
    return f"{code}{char}{_RESET}" if colour else char


def _cells_text(cells: Cells, colour: bool) -> str:
    out = []
    for starts, busy, overlap in zip(cells.starts, cells.busy, cells.overlap):
        char = _cell(starts, busy, overlap)
        out.append(_paint(char, _COLOURS.get(char, _START_COLOUR), colour))
    return "".join(out)


def _load_text(load: tuple[tuple[str, ...], ...], busiest: set[int], colour: bool) -> str:
    out = []
    for slot, names in enumerate(load):
        char = _cell(len(names), False, False)
        code = _COLOURS["busy"] if slot in busiest else _COLOURS["."] if not names else ""
        out.append(_paint(char, code, colour and bool(code)))
    return "".join(out)


def _legend(timeline: Timeline) -> str:
    lasting = "its recorded duration" if timeline.source == HISTORY else "its timeout"
    return (
        "1-9 runs start in the column, # ten or more, - a run still going "
        f"(for {lasting}), ! a run starts while the job's previous run is still going; "
        "load: jobs starting per column; a job's zone is shown when it is not the host's"
    )
