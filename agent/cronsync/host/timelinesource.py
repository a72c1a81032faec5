"""The jobs ``cronsync timeline --repo DIR`` draws: a working tree of job files, checked
as ``cronsync validate`` checks it and compiled for one host (no agent config needed:
without one, this machine's name and zone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cronsync.core.compiled import compile_jobs
from cronsync.core.model import ERROR, HostContext, Problem
from cronsync.core.render import SourceInfo
from cronsync.host.build import checked_entries

WORKTREE = "working-tree"


@dataclass(frozen=True)
class RepoJobs:
    """A repository's jobs as one host would install them.

    Attributes:
        problems: every error and warning (validation, then rendering in host time).
        jobs_doc: the compiled ``jobs.json`` document (every job ``installed`` false
            when there are errors).
    """

    problems: tuple[Problem, ...]
    jobs_doc: dict[str, Any]

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that would stop a sync."""
        return tuple(p for p in self.problems if p.severity == ERROR)


def repo_jobs(root: Path, host: HostContext, now: datetime) -> RepoJobs:
    """Validate the job files in ``root`` (as ``cronsync validate`` without ``--host``:
    no shellcheck) and compile them for ``host``.

    Args:
        root: the root of a jobs repository (see :func:`check_repo_dir`).
        host: name, groups and zone of the host to draw for.
        now: the moment time-zone offsets are worked out at.

    Returns:
        The problems and the compiled document; it does not raise for problems in the
        job files.
    """
    report, problems, entries = checked_entries(root, None, host, now)
    doc = compile_jobs(report.repo, host, SourceInfo("", "", WORKTREE), entries, {})
    return RepoJobs(problems, doc)
