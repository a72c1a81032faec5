"""What an export produces: the documents to write and the summary to print (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cronsync.core.model import Job, Problem
from cronsync.export.refusal import Unexportable

T = TypeVar("T")


@dataclass(frozen=True)
class ExportResult:
    """The outcome of translating a repository for one target.

    Attributes:
        target: ``"kubernetes"`` or ``"eventbridge"``.
        documents: file name -> JSON-ready document (empty when ``problems``).
        jobs: one summary per job (its names, schedule text, enabled).
        secrets: each secret reference and where the target reads it (never a value).
        notes: where the target's behaviour differs from cron's in a way it cannot
            avoid, or a field it leaves out, one line each.
        problems: the reasons a job cannot be exported exactly; any means nothing is
            written.
    """

    target: str
    documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    jobs: tuple[Mapping[str, Any], ...] = ()
    secrets: tuple[Mapping[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The ``--json`` shape (without the documents themselves)."""
        return {
            "ok": not self.problems,
            "target": self.target,
            "jobs": [dict(job) for job in self.jobs],
            "secrets": [dict(secret) for secret in self.secrets],
            "notes": list(self.notes),
            "problems": [problem.as_dict() for problem in self.problems],
        }


def refusal_problem(job: Job, target: str, exc: Unexportable) -> Problem:
    """A refusal as a Problem located at the job field it is about."""
    return job.problem(exc.field, f"cannot export to {target}: {exc.message}")


def each_job(
    jobs: tuple[Job, ...], target: str, translate: Callable[[Job], T]
) -> tuple[list[tuple[Job, T]], list[Problem]]:
    """Translate every job; collect every refusal instead of stopping at the first.

    Returns:
        (job, translation) for the jobs that translated, and the problems of the rest.
    """
    done: list[tuple[Job, T]] = []
    problems: list[Problem] = []
    for job in sorted(jobs, key=lambda item: item.name):
        try:
            done.append((job, translate(job)))
        except Unexportable as exc:
            problems.append(refusal_problem(job, target, exc))
    return done, problems


def job_zone(job: Job) -> str:
    """The zone a job's schedule is read in, which an export must name.

    Raises:
        Unexportable: neither the job nor ``defaults.timezone`` names one (cron would
            use the host's zone, which the target does not know).
    """
    if job.timezone is None:
        raise Unexportable(
            "no time zone: set timezone (or defaults.timezone in cronsync.toml); "
            "the target does not run in the host's zone",
            field="timezone",
        )
    return job.timezone
