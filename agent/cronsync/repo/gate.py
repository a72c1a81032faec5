"""The validation gate: a repository directory in, every problem out.

Orchestrates read (``files``) -> parse (``manifest``) -> check values
(``validate``) -> check files (``scriptcheck``). ``cronsync validate`` and every sync
run exactly this, so a repository's CI and the host agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cronsync.core.errors import UsageError
from cronsync.core.manifest import REPO_CONFIG, parse_repo
from cronsync.core.model import ERROR, HostContext, JobRepo, Problem
from cronsync.core.validate import validate_repo
from cronsync.repo.files import read_repo
from cronsync.repo.scriptcheck import ScriptChecker


@dataclass(frozen=True)
class GateReport:
    """The outcome of validating one repository.

    Attributes:
        repo: the parsed jobs (those whose files parsed; check ``ok`` before using it).
        problems: every error and warning, ordered by file then line.
    """

    repo: JobRepo
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that block an install."""
        return tuple(p for p in self.problems if p.severity == ERROR)

    @property
    def ok(self) -> bool:
        """True when nothing blocks an install (warnings allowed)."""
        return not self.errors


def check_repo_dir(root: Path) -> None:
    """Refuse a folder that is not the root of a jobs repository (``validate``,
    ``timeline --repo``).

    Raises:
        UsageError: ``root`` is not a directory, or has no ``jobs/`` (a ``jobs`` that is a
            file or a link is a problem of the repository, reported by the checks).
    """
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    if not os.path.lexists(root / "jobs"):
        raise UsageError(
            f"{root} has no jobs/ directory: give the root of a cronsync jobs repository"
        )


def _order(problem: Problem) -> tuple[str, int, str]:
    return (problem.file, problem.line or 0, problem.field)


def check_repository(
    root: Path, host: Optional[HostContext] = None, lint: bool = False
) -> GateReport:
    """Validate the job repository in ``root``.

    Args:
        root: a working tree or an exported release.
        host: the host's context, to check users and targeting; None in a repo's CI.
        lint: also run shellcheck (warnings) where it is installed.

    Returns:
        The report; it never raises for anything wrong inside the repository.
    """
    config, job_files, problems = read_repo(root)
    repo, parse_problems = parse_repo(config, job_files)
    problems += parse_problems
    problems += validate_repo(repo, host, REPO_CONFIG)
    problems += ScriptChecker(root, lint=lint).check_jobs(repo.jobs)
    unique = sorted(set(problems), key=_order)
    return GateReport(repo, tuple(unique))
