"""The validation gate: a repository directory in, every problem out.

Orchestrates read (``files``) -> parse (``manifest``) -> check values
(``validate``) -> check files (``scriptcheck``). ``cronsync validate`` and every sync
run exactly this, so a repository's CI and the host agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cronsync.core.checkcache import CheckedFile
from cronsync.core.errors import UsageError
from cronsync.core.manifest import REPO_CONFIG, assemble_repo, parse_job, parse_repo
from cronsync.core.model import ERROR, Defaults, HostContext, Job, JobRepo, Problem
from cronsync.core.validate import validate_defaults, validate_job, validate_repo
from cronsync.repo.files import read_repo, read_repo_except
from cronsync.repo.scriptcheck import ScriptChecker, job_dependencies


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


def _order(problem: Problem) -> tuple[str, int, str, str, str]:
    """File, line, field, then the text: one order whatever order the checks ran in."""
    return (problem.file, problem.line or 0, problem.field, problem.message, problem.severity)


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


@dataclass(frozen=True)
class ReusingReport:
    """The outcome of :func:`check_repository_reusing`.

    Attributes:
        report: the same report :func:`check_repository` gives.
        records: what the checks of each job file concluded, for the next build; None
            when they cannot be told apart (a job names a script in an unusual way).
        reused: how many job files' results came from the earlier build.
        files: how many job files were parsed or reused.
    """

    report: GateReport
    records: Optional[dict[str, CheckedFile]]
    reused: int
    files: int


def check_repository_reusing(
    root: Path, host: HostContext, listing: Mapping[str, str], reuse: Mapping[str, CheckedFile]
) -> ReusingReport:
    """Validate the job repository in ``root`` as :func:`check_repository` does (no
    shellcheck), taking the results of the job files in ``reuse`` from an earlier build
    instead of reading and checking them again.

    Args:
        root: an exported release.
        host: the host's context.
        listing: every path of the commit -> its git mode and blob id.
        reuse: job file path -> the record to reuse (see
            :func:`cronsync.core.checkcache.reusable`).

    Returns:
        The report and the records of this build; never raises for the repository's
        content.
    """
    config, files, found, problems = read_repo_except(root, reuse)
    texts = {source.path: source for source in files}
    parsed: dict[str, tuple[Optional[Job], list[Problem]]] = {}
    kept: list[str] = []  # a second file of a job name is not parsed, nor kept

    def parse_one(path: str, defaults: Defaults) -> tuple[Optional[Job], list[Problem]]:
        if path not in texts:
            kept.append(path)
            return reuse[path].job, []
        parsed[path] = parse_job(texts[path], defaults)
        return parsed[path]

    repo, repo_problems = assemble_repo(config, [*texts, *found], parse_one)
    fresh = [job for job in repo.jobs if job.file in parsed]
    deps = {job.file: job_dependencies(job) for job in fresh}
    if reuse and any(value is None for value in deps.values()):
        return ReusingReport(check_repository(root, host), None, 0, len(texts) + len(found))
    checks = {job.file: validate_job(job, host) for job in fresh}
    scripts = ScriptChecker(root).check_jobs(tuple(fresh))
    records = _records(listing, parsed, checks, scripts, deps)
    problems += repo_problems + validate_defaults(repo.defaults, REPO_CONFIG) + scripts
    for path in kept:
        problems += reuse[path].problems
        if records is not None:
            records[path] = reuse[path]
    for found_problems in checks.values():
        problems += found_problems
    unique = sorted(set(problems), key=_order)
    return ReusingReport(
        GateReport(repo, tuple(unique)), records, len(kept), len(parsed) + len(kept)
    )


def _records(
    listing: Mapping[str, str],
    parsed: Mapping[str, tuple[Optional[Job], list[Problem]]],
    checks: Mapping[str, list[Problem]],
    scripts: list[Problem],
    deps: Mapping[str, Optional[tuple[str, ...]]],
) -> Optional[dict[str, CheckedFile]]:
    """The record of each job file parsed now (but those whose dependencies cannot be
    told); None when a script's problem cannot be given to the jobs whose checks found
    it."""
    owners: dict[str, list[str]] = {}
    for path, paths in deps.items():
        for dep in paths or ():
            owners.setdefault(dep, []).append(path)
    found: dict[str, list[Problem]] = {path: [] for path in parsed}
    for problem in scripts:
        holders = [problem.file] if problem.file in parsed else owners.get(problem.file, [])
        if not holders:
            return None
        for path in holders:
            found[path].append(problem)
    records = {}
    for path, (job, parse_problems) in parsed.items():
        blob = listing.get(path)
        if blob is None or (job is not None and deps[path] is None):
            continue  # not in git's listing, or checked anew every time
        mine = tuple(parse_problems + checks.get(path, []) + found[path])
        records[path] = CheckedFile(blob, job, mine, deps.get(path) or ())
    return records
