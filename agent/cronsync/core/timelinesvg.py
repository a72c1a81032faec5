"""The SVG picture of a timeline (pure): a self-contained document, no script, no link.

One lane per job, named with its zone. Each run is a mark in host time
(``class="run"``; ``data-start`` is its start in UTC, ``data-host-time`` and
``data-job-time`` the same instant in the host's and the job's zone), as wide as it lasts
or may last (its timeout, or its recorded duration); a run that starts while the job's
previous one is still going is also ``overlap``. A slot (10 minutes for a day, 30 for up
to three days, an hour beyond) in which more than :data:`AGGREGATE_ABOVE` runs of a job
start gets one mark instead (``class="runs"``, ``data-count``), so the picture stays
bounded for a job that runs every minute. Below the lanes a load row counts the jobs
starting per slot, and the busiest slots are named.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from cronsync.core.timeline import (
    HISTORY,
    Lane,
    Run,
    Timeline,
    busiest_slots,
    host_time,
    left_out_summary,
    load_per_slot,
    slot_count,
    slot_label,
    slot_of,
    slot_start,
)
from cronsync.core.tzrender import load_zone

AGGREGATE_ABOVE = 3
BUSIEST = 3
_LABEL = 260  # px for the lane names
_MARGIN = 10
_LANE = 24
_MARK = 14
_HEAD = 56
_LOAD = 60
_LINE = 16
_STYLE = (
    "text{font:12px sans-serif;fill:#222}.zone{fill:#777}.hour{stroke:#ddd}"
    ".day{stroke:#888}.lane-bg{fill:#f7f7f7}.run{fill:#2b7bb9;fill-opacity:.75;stroke:#fff;stroke-width:.5}"
    ".runs{fill:#16507a}.overlap{fill:#d62728}.failed,.timed-out,.error{fill:#e6550d}"
    ".load{fill:#8c6bb1}.load.top{fill:#54278f}.busiest{font-weight:bold}"
)


def svg_slot_minutes(days: int) -> int:
    """The SVG's slot: 10 minutes for one day, 30 up to three days, 60 beyond."""
    return 10 if days == 1 else 30 if days <= 3 else 60


def render_svg(timeline: Timeline) -> str:
    """Draw ``timeline`` as one SVG document (UTF-8 text, ends with a newline)."""
    window = timeline.window
    minutes = svg_slot_minutes(window.days)
    chart = 1152 if window.days == 1 else 2016
    scale = chart / ((window.end - window.start).total_seconds() / 60)  # px per minute
    load = load_per_slot(timeline, minutes)
    busiest = busiest_slots(load, BUSIEST)
    notes = _notes(timeline, load, busiest, minutes)
    lanes_top = _HEAD
    load_top = lanes_top + _LANE * len(timeline.lanes) + 8
    height = load_top + _LOAD + 12 + _LINE * len(notes) + _MARGIN
    width = _MARGIN + _LABEL + chart + _MARGIN
    canvas = _Canvas(timeline, scale, minutes)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f"<title>{_esc(_title(timeline))}</title>",
        f"<style>{_STYLE}</style>",
        f'<text x="{_MARGIN}" y="18" class="heading">{_esc(_title(timeline))}</text>',
        *canvas.grid(lanes_top, load_top + _LOAD),
    ]
    for index, lane in enumerate(timeline.lanes):
        parts += canvas.lane(lane, lanes_top + index * _LANE)
    parts += canvas.load_row(load, set(busiest), load_top)
    for number, (kind, line) in enumerate(notes):
        y = load_top + _LOAD + 12 + _LINE * (number + 1)
        parts.append(f'<text x="{_MARGIN}" y="{y}" class="{kind}">{_esc(line)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _title(timeline: Timeline) -> str:
    window = timeline.window
    what = "recorded runs" if timeline.source == HISTORY else "scheduled runs"
    days = "1 day" if window.days == 1 else f"{window.days} days"
    return f"cronsync timeline: {what}, {window.day}, {days}, host time {window.host_zone}"


def _notes(
    timeline: Timeline, load: Sequence[Sequence[str]], busiest: list[int], minutes: int
) -> list[tuple[str, str]]:
    notes = []
    for slot in busiest:
        noun = "job starts" if len(load[slot]) == 1 else "jobs start"
        label = slot_label(timeline.window, minutes, slot)
        names = ", ".join(load[slot])
        notes.append(("busiest", f"busiest: {label}: {len(load[slot])} {noun} ({names})"))
    summary = left_out_summary(timeline.left_out)
    if summary:
        notes.append(("left-out", summary))
    lasting = "recorded duration" if timeline.source == HISTORY else "timeout"
    notes.append(
        (
            "legend",
            f"a mark is as wide as its run's {lasting}; red: starts while the previous run "
            f"still runs; a dark block: more than {AGGREGATE_ABOVE} runs in "
            f"{minutes} minutes",
        )
    )
    return notes


class _Canvas:
    """Coordinates of one drawing: instants to x, and the pieces of the picture."""

    def __init__(self, timeline: Timeline, scale: float, minutes: int) -> None:
        self.timeline = timeline
        self.window = timeline.window
        self.scale = scale
        self.minutes = minutes
        self.slots = slot_count(self.window, minutes)
        self.right = (
            _MARGIN + _LABEL + (self.window.end - self.window.start).total_seconds() / 60 * scale
        )

    def x(self, instant: datetime) -> float:
        """The x of an instant (clipped to the chart)."""
        minutes = (instant - self.window.start).total_seconds() / 60
        return min(_MARGIN + _LABEL + max(minutes, 0.0) * self.scale, self.right)

    def grid(self, top: int, bottom: int) -> list[str]:
        """Hour lines with their labels, day lines with the date."""
        out = []
        step = next(s for s in (1, 2, 3, 4, 6, 12, 24) if 60 * s * self.scale >= 24)
        hours = int((self.window.end - self.window.start).total_seconds() // 3600)
        previous = None
        for hour in range(hours + 1):
            instant = self.window.start + timedelta(hours=hour)
            local = host_time(self.window, instant)
            x = _num(self.x(instant))
            if instant >= self.window.end:  # the right edge: a line, no label to cut off
                out.append(f'<line class="day" x1="{x}" y1="22" x2="{x}" y2="{bottom}"/>')
                break
            if previous is None or local.date() != previous:
                out.append(f'<line class="day" x1="{x}" y1="22" x2="{x}" y2="{bottom}"/>')
                out.append(f'<text x="{x}" y="32">{local:%Y-%m-%d}</text>')
                previous = local.date()
            elif local.hour % step == 0:
                out.append(f'<line class="hour" x1="{x}" y1="{top - 8}" x2="{x}" y2="{bottom}"/>')
            if local.hour % step == 0:
                out.append(f'<text x="{x}" y="{top - 10}">{local:%H}</text>')
        return out

    def lane(self, lane: Lane, top: int) -> list[str]:
        """One job's lane: its name and zone, its marks."""
        out = [
            f'<g class="lane" data-job="{_esc(lane.job)}" data-zone="{_esc(lane.zone)}">',
            f'<rect class="lane-bg" x="{_MARGIN + _LABEL}" y="{top + 2}" '
            f'width="{_num(self.right - _MARGIN - _LABEL)}" height="{_LANE - 4}"/>',
            f'<text x="{_MARGIN}" y="{top + 16}">{_esc(lane.job)} '
            f'<tspan class="zone">{_esc(lane.zone)}</tspan></text>',
        ]
        by_slot: dict[int, list[int]] = {}
        for index, run in enumerate(lane.runs):
            by_slot.setdefault(slot_of(self.window, self.minutes, run.start), []).append(index)
        clash = set(lane.overlaps)
        y = top + (_LANE - _MARK) // 2
        for slot in sorted(by_slot):
            indexes = by_slot[slot]
            if len(indexes) > AGGREGATE_ABOVE:
                out.append(self._aggregate(lane, slot, indexes, clash, y))
            else:
                out += [self._run(lane, lane.runs[i], i in clash, y) for i in indexes]
        out.append("</g>")
        return out

    def _run(self, lane: Lane, run: Run, overlap: bool, y: int) -> str:
        x = self.x(run.start)
        end = run.end
        width = max(self.x(end) - x, 2.0) if end is not None else 2.0
        kinds = ["run", *([run.status] if run.status else []), *(["overlap"] if overlap else [])]
        local = host_time(self.window, run.start)
        job_time = run.start.astimezone(load_zone(lane.zone))
        lasting = f", {_duration(run.seconds)}" if run.seconds is not None else ""
        status = f", {run.status}" if run.status else ""
        tip = (
            f"{lane.job}: {local:%Y-%m-%d %H:%M} host time ({job_time:%H:%M} {lane.zone})"
            f"{lasting}{status}{' - starts while the previous run still runs' if overlap else ''}"
        )
        return (
            f'<rect class="{" ".join(kinds)}" data-job="{_esc(lane.job)}" '
            f'data-start="{_utc(run.start)}" data-host-time="{local.isoformat()}" '
            f'data-job-time="{job_time.isoformat()}" x="{_num(x)}" y="{y}" '
            f'width="{_num(width)}" height="{_MARK}"><title>{_esc(tip)}</title></rect>'
        )

    def _aggregate(self, lane: Lane, slot: int, indexes: list[int], clash: set[int], y: int) -> str:
        first, last = lane.runs[indexes[0]].start, lane.runs[indexes[-1]].start
        x = self.x(slot_start(self.window, self.minutes, slot))
        width = self.x(slot_start(self.window, self.minutes, slot + 1)) - x
        overlaps = sum(i in clash for i in indexes)
        label = slot_label(self.window, self.minutes, slot)
        tip = f"{lane.job}: {len(indexes)} runs start in {label} host time" + (
            f", {overlaps} while the previous run still runs" if overlaps else ""
        )
        return (
            f'<rect class="runs" data-job="{_esc(lane.job)}" data-slot="{slot}" '
            f'data-count="{len(indexes)}" data-overlaps="{overlaps}" '
            f'data-first="{_utc(first)}" data-last="{_utc(last)}" x="{_num(x)}" y="{y}" '
            f'width="{_num(max(width, 1.0))}" height="{_MARK}"><title>{_esc(tip)}</title></rect>'
        )

    def load_row(self, load: Sequence[Sequence[str]], top_slots: set[int], top: int) -> list[str]:
        """The jobs starting per slot, as bars; the busiest ones darker."""
        most = max((len(names) for names in load), default=0) or 1
        out = [
            '<g class="load-row">',
            f'<text x="{_MARGIN}" y="{top + _LOAD // 2}">jobs starting per '
            f"{self.minutes} minutes (most: {most})</text>",
        ]
        for slot, names in enumerate(load):
            if not names:
                continue
            x = self.x(slot_start(self.window, self.minutes, slot))
            width = max(self.x(slot_start(self.window, self.minutes, slot + 1)) - x - 1, 1.0)
            height = max(round(_LOAD * len(names) / most), 2)
            kind = "load top" if slot in top_slots else "load"
            tip = f"{slot_label(self.window, self.minutes, slot)}: {', '.join(names)}"
            out.append(
                f'<rect class="{kind}" data-slot="{slot}" data-jobs="{len(names)}" '
                f'data-start="{_utc(slot_start(self.window, self.minutes, slot))}" '
                f'x="{_num(x)}" y="{top + _LOAD - height}" width="{_num(width)}" '
                f'height="{height}"><title>{_esc(tip)}</title></rect>'
            )
        out.append("</g>")
        return out


def _utc(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat()


def _num(value: float) -> str:
    """A coordinate with at most two decimals, written the same way every time."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _esc(text: str) -> str:
    """Escape text for XML content and double-quoted attributes."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
