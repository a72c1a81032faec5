"""The ``--json`` document of a timeline (pure): format ``cronsync.timeline/1``.

Times are ISO 8601 in the host's zone (``start`` of a run, of a slot), except a run's
``job_time``, in the job's own zone. ``load`` lists the slots where at least one job
starts; ``busiest`` the busiest of them, busiest first.
"""

from __future__ import annotations

from typing import Any

from cronsync.core.timeline import (
    Lane,
    Timeline,
    busiest_slots,
    host_time,
    load_per_slot,
    slot_label,
    slot_start,
)
from cronsync.core.tzrender import load_zone

FORMAT = "cronsync.timeline/1"
BUSIEST = 3


def timeline_json(timeline: Timeline, minutes: int) -> dict[str, Any]:
    """Return the JSON-ready document of ``timeline`` with its load in slots of
    ``minutes``."""
    window = timeline.window
    load = load_per_slot(timeline, minutes)

    def slot(index: int) -> dict[str, Any]:
        return {
            "start": host_time(window, slot_start(window, minutes, index)).isoformat(),
            "label": slot_label(window, minutes, index),
            "jobs": len(load[index]),
            "names": list(load[index]),
        }

    return {
        "format": FORMAT,
        "source": timeline.source,
        "date": window.day.isoformat(),
        "days": window.days,
        "host_timezone": window.host_zone,
        "start": host_time(window, window.start).isoformat(),
        "end": host_time(window, window.end).isoformat(),
        "slot_minutes": minutes,
        "jobs": [_lane_json(timeline, lane) for lane in timeline.lanes],
        "load": [slot(i) for i, names in enumerate(load) if names],
        "busiest": [slot(i) for i in busiest_slots(load, BUSIEST)],
        "left_out": [{"job": item.job, "reason": item.reason} for item in timeline.left_out],
    }


def _lane_json(timeline: Timeline, lane: Lane) -> dict[str, Any]:
    zone = load_zone(lane.zone)
    clash = set(lane.overlaps)
    runs = []
    for index, run in enumerate(lane.runs):
        item: dict[str, Any] = {
            "start": host_time(timeline.window, run.start).isoformat(),
            "job_time": run.start.astimezone(zone).isoformat(),
            "seconds": run.seconds,
            "overlap": index in clash,
        }
        if run.status:
            item["status"] = run.status
        runs.append(item)
    return {
        "name": lane.job,
        "timezone": lane.zone,
        "schedule": lane.schedule,
        "count": len(lane.runs),
        "overlaps": len(lane.overlaps),
        "runs": runs,
    }
