"""Run records: what happened in one run of one job (:class:`RunRecord`) and its JSON form.

A record is written as one JSON file per run under ``runs/<job>/``, plus ``last.json``,
by :mod:`cronsync.run.store`; its reader checks every field, since the job's user can
write anything into its runs directory. On the shim's start-up path: no typing,
dataclasses or pathlib at import time.
"""

from __future__ import annotations

import os
import time

from cronsync.core.frozen import Frozen

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from typing import Any, Optional

FORMAT = 1
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed-out"
SKIPPED = "skipped"
ERROR = "error"  # cronsync could not run the job (no release, secrets, no program)
# never stored: how status and history show a "running" run whose cronsync-run is gone
# while its job's processes live on (cronsync.run.orphans)
ORPHANED = "orphaned"


def new_run_id(now: float) -> str:
    """Return a sortable, unique run id: UTC time plus 4 random hex digits."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{stamp}-{os.urandom(2).hex()}"  # not `secrets`: it costs ms to import


def iso_time(epoch: float) -> str:
    """Format an epoch time as ISO 8601 UTC with milliseconds."""
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{base}.{int(epoch * 1000) % 1000:03d}Z"


_NO_EXTRA: dict[str, Any] = {}  # RunRecord's default: a new {} for each record


class RunRecord(Frozen):
    """What happened in one run of one job (never a secret value).

    Immutable; :meth:`finished` returns a changed copy. Its fields, in this order, are
    the keys of its JSON form after ``format``.
    """

    # the fields, in order
    __slots__ = (  # noqa: RUF023
        "run_id",
        "job",
        "host",
        "user",
        "commit",
        "release",
        "started",
        "status",
        "ended",
        "duration",
        "exit_code",
        "signal",
        "timed_out",
        "reason",
        "output_bytes",
        "output_lines",
        "log",
        "check_exit_code",
        "by_hand",
        "cloudwatch_stream",
        "extra",
    )
    run_id: str
    job: str
    host: str
    user: str
    commit: str
    release: str
    started: str
    status: str
    ended: Optional[str]
    duration: Optional[float]
    exit_code: Optional[int]
    signal: Optional[int]
    timed_out: bool
    reason: Optional[str]
    output_bytes: int
    output_lines: int
    log: Optional[str]
    check_exit_code: Optional[int]
    by_hand: bool
    cloudwatch_stream: Optional[str]
    extra: dict[str, Any]

    def __init__(
        self,
        run_id: str,
        job: str,
        host: str,
        user: str,
        commit: str,
        release: str,
        started: str,
        status: str = RUNNING,
        ended: Optional[str] = None,
        duration: Optional[float] = None,
        exit_code: Optional[int] = None,
        signal: Optional[int] = None,
        timed_out: bool = False,
        reason: Optional[str] = None,
        output_bytes: int = 0,
        output_lines: int = 0,
        log: Optional[str] = None,
        check_exit_code: Optional[int] = None,
        by_hand: bool = False,
        cloudwatch_stream: Optional[str] = None,
        extra: dict[str, Any] = _NO_EXTRA,
    ) -> None:
        self._fill(
            run_id,
            job,
            host,
            user,
            commit,
            release,
            started,
            status,
            ended,
            duration,
            exit_code,
            signal,
            timed_out,
            reason,
            output_bytes,
            output_lines,
            log,
            check_exit_code,
            by_hand,
            cloudwatch_stream,
            {} if extra is _NO_EXTRA else extra,
        )

    def finished(self, **changes: Any) -> RunRecord:
        """Return a copy with ``changes`` applied.

        Raises:
            TypeError: a change names no field.
        """
        fields = dict(zip(self.__slots__, self._values()))
        fields.update(changes)
        return RunRecord(**fields)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (``format`` included): a deep copy of the fields."""
        document: dict[str, Any] = {"format": FORMAT}
        for name in self.__slots__:
            document[name] = _copy(getattr(self, name))
        return document

    @classmethod
    def from_json(cls, data: Any) -> Optional[RunRecord]:
        """Build from JSON; None for anything that is not a record of this format.

        The job's user can write anything into its runs directory, so every field is
        type-checked: a missing required field or any field of the wrong type makes the
        whole record unusable (None), never an exception for the reader.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        known = {}
        for key in cls.__slots__:
            if key in data:
                if not _FIELD_CHECKS[key](data[key]):
                    return None
                known[key] = data[key]
        if any(key not in known for key in _REQUIRED):
            return None
        return cls(**known)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _opt_int(value: Any) -> bool:
    return value is None or _is_int(value)


def _opt_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


# what each field of a record's JSON form must be (RunRecord.from_json)
_FIELD_CHECKS = {
    "run_id": _is_str,
    "job": _is_str,
    "host": _is_str,
    "user": _is_str,
    "commit": _is_str,
    "release": _is_str,
    "started": _is_str,
    "status": _is_str,
    "ended": _opt_str,
    "duration": _opt_number,
    "exit_code": _opt_int,
    "signal": _opt_int,
    "timed_out": _is_bool,
    "reason": _opt_str,
    "output_bytes": _is_int,
    "output_lines": _is_int,
    "log": _opt_str,
    "check_exit_code": _opt_int,
    "by_hand": _is_bool,
    "cloudwatch_stream": _opt_str,
    "extra": _is_dict,
}
_REQUIRED = ("run_id", "job", "host", "user", "commit", "release", "started")


def _copy(value: Any) -> Any:
    """Deep-copy a field's value for :meth:`RunRecord.to_json` (as
    ``dataclasses.asdict`` did: new dicts, lists and tuples, the same scalars)."""
    if isinstance(value, (str, int, float, type(None))):
        return value
    if isinstance(value, dict):
        return type(value)((_copy(key), _copy(item)) for key, item in value.items())
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*[_copy(item) for item in value])
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(item) for item in value)
    import copy

    return copy.deepcopy(value)
