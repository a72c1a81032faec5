"""One run's context: how the shim was asked to run (:class:`RunOptions`) and the state
of the run under way (:class:`JobRun`: its job, record and directories).

Shared by :mod:`cronsync.run.steps`, :mod:`cronsync.run.after` and
:mod:`cronsync.run.runner`, which is why it lives below them. On the shim's start-up
path: no pathlib, dataclasses or typing at import time.
"""

from __future__ import annotations

import os
import pwd
import sys
import time

from cronsync.files.paths import path_str
from cronsync.run.record import RunRecord, iso_time, new_run_id
from cronsync.run.store import write_record

# Annotations only: the shim's start-up imports neither typing nor pathlib (nor
# dataclasses), so not `typing.TYPE_CHECKING` either.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Callable, Optional

    from cronsync.files.paths import StrPath
    from cronsync.run.jobspec import JobSpec

_STDERR: Any = object()  # RunOptions' default stderr: sys.stderr when it is made


class RunOptions:
    """How the shim was asked to run.

    Attributes:
        root: the host's ``paths.root`` (a str or a path object).
        by_hand: ``cronsync run`` by an operator: no gate, no jitter, runs a job that
            is not installed here only if ``force``.
        force: with ``by_hand``, run a disabled or untargeted job too.
        clock, sleep: time sources (tests pass their own).
        stderr: where the shim's own complaints go (``sys.stderr`` by default).
    """

    # the fields, in order
    __slots__ = (  # noqa: RUF023
        "root",
        "by_hand",
        "force",
        "clock",
        "sleep",
        "stderr",
    )

    def __init__(
        self,
        root: StrPath = "/",
        by_hand: bool = False,
        force: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        stderr: Any = _STDERR,
    ) -> None:
        self.root = root
        self.by_hand = by_hand
        self.force = force
        self.clock = clock
        self.sleep = sleep
        self.stderr = sys.stderr if stderr is _STDERR else stderr

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"RunOptions({fields})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RunOptions) and other.__class__ is self.__class__:
            return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


class JobRun:
    """The state of one run: its job, record, directories."""

    def __init__(self, job: JobSpec, options: RunOptions) -> None:
        self.job = job
        self.options = options
        settings = job.release.settings
        self.settings = settings
        self.runs_dir = path_str(
            settings.get("runs_dir") or path_str(options.root, "var/lib/cronsync/runs")
        )
        self.log_dir = path_str(
            settings.get("log_dir") or path_str(options.root, "var/log/cronsync")
        )
        # set when the run's output or metrics go through the broker (run.after)
        self.broker_socket: Optional[str] = None
        self.pending_file: Optional[str] = None
        # set when a one-host job won its occurrence's fleet lease (run.fleet)
        self.fencing_token: Optional[str] = None
        now = options.clock()
        self.run_id = new_run_id(now)
        self.started = now
        self.record = RunRecord(
            run_id=self.run_id,
            job=job.name,
            host=str(settings.get("host", "")),
            user=_user_name(),
            commit=str(job.release.document.get("commit", "")),
            release=job.release.name,
            started=iso_time(now),
            by_hand=options.by_hand,
        )

    def save(self, record: RunRecord) -> None:
        self.record = record
        write_record(self.runs_dir, record)

    def end(self, status: str, exit_code: Optional[int], **changes: Any) -> int:
        """Record the run's end (now); return its exit status."""
        now = self.options.clock()
        self.save(
            self.record.finished(
                status=status,
                exit_code=exit_code,
                ended=iso_time(now),
                duration=round(now - self.started, 3),
                **changes,
            )
        )
        return 0 if exit_code is None else exit_code

    def add_extra(self, extra: Mapping[str, Any]) -> None:
        """Add keys to the record's ``extra`` (and save it)."""
        if extra:
            self.save(self.record.finished(extra={**self.record.extra, **extra}))
