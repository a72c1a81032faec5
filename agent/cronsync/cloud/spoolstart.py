"""A new run's pending delivery, as the shim writes it at the start of a run.

The first state of the file :mod:`cronsync.cloud.pending` reads and delivery rewrites
(a test keeps :func:`fresh_pending` equal to ``Pending(...).to_json()``), written here
without what reading and rewriting one needs: importing ``dataclasses``, ``typing``,
``pathlib`` and ``json`` costs a run that ships to CloudWatch about 30 ms. Also the
spool's names: the format, the folder, a run's stream.

On the shim's start-up path: no typing, dataclasses or pathlib at import time.
"""

from __future__ import annotations

import os
import time

from cronsync.core import fastjson
from cronsync.files.atomic import atomic_write
from cronsync.files.paths import path_str

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from typing import Any

PENDING_FORMAT = "cronsync.pending/1"
PENDING_DIR = "pending"


def stream_name(host: str, job: str, run_id: str) -> str:
    """Return the CloudWatch Logs stream of one run: ``HOST/JOB/RUN-ID``."""
    return f"{host}/{job}/{run_id}"


def fresh_pending(log_path: str, group: str, stream: str, created_ms: int) -> dict[str, Any]:
    """Return the JSON object of a pending file nothing of which is delivered yet."""
    return {
        "format": PENDING_FORMAT,
        "log_path": log_path,
        "group": group,
        "stream": stream,
        "offset": 0,
        "marker_stream": "o",
        "marker_epoch_ms": 0,
        "mid_line": False,
        "skip_events": 0,
        "finished": False,
        "attempts": 0,
        "last_error": None,
        "created_ms": created_ms,
        "stream_end": {"at_last": 0, "last_ms": None},
        "in_flight": None,
    }


def write_fresh_pending(
    runs_dir: str, job: str, run_id: str, log_path: str, group: str, stream: str
) -> str:
    """Write ``runs/JOB/pending/RUN-ID.json`` (mode 0600, atomically; the folder made
    0700 when missing) for a run just started; return its path.

    Raises:
        ValueError: ``job`` or ``run_id`` is not a plain file name.
        OSError: the folder cannot be made.
        InstallError: the file cannot be written.
    """
    for name in (job, run_id):
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise ValueError(f"not a valid job or run name: {name!r}")
    directory = path_str(runs_dir, job, PENDING_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = path_str(directory, f"{run_id}.json")
    document = fresh_pending(log_path, group, stream, time.time_ns() // 1_000_000)
    atomic_write(path, fastjson.dumps(document, sort_keys=True).encode() + b"\n", mode=0o600)
    return path
