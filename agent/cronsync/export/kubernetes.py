"""A job repository as Kubernetes ``batch/v1`` CronJobs (pure).

One CronJob per job, JSON (which ``kubectl apply -f`` reads; PyYAML is no dependency
of cronsync). The image holds the repository at ``REPO_DIR``: a command's script path
(``scripts/x.sh``) and a relative ``workdir`` are taken from there, and the container
starts in ``REPO_DIR`` (or the job's ``workdir``). Secrets are ``secretKeyRef``s to
Kubernetes Secrets named by ``names.secret_target``; cronsync reads no value.

Mapped: schedule, timezone (``spec.timeZone``), concurrency (Forbid / Allow /
Replace), timeout (``activeDeadlineSeconds``), enabled (``suspend``), env, secrets,
owner, description and file (annotations). Not mapped, and said so in the notes:
jitter (a CronJob starts at its minute), user (the image's user runs it), success.
"""

from __future__ import annotations

import posixpath
from typing import Any

from cronsync.core.model import Job, JobRepo, Problem
from cronsync.export.kubeschedule import clock_change_notes, kubernetes_schedule
from cronsync.export.names import (
    cronjob_name,
    secret_mapping,
    secret_target,
    source_of,
    unique_names,
)
from cronsync.export.refusal import Unexportable
from cronsync.export.result import ExportResult, each_job, job_zone

TARGET = "kubernetes"
KUBERNETES_VERSION = "1.30"  # the API the manifests are checked against in the tests
REPO_DIR = "/opt/cronsync/repo"
ANNOTATION = "cronsync/"
_POLICY = {"forbid": "Forbid", "allow": "Allow", "replace": "Replace"}


def export_kubernetes(repo: JobRepo, image: str, year: int) -> ExportResult:
    """Translate every job of a validated repository into a CronJob.

    Args:
        repo: a repository ``cronsync validate`` found no errors in.
        image: the container image that holds the repository at ``REPO_DIR``.
        year: the current year (clock changes are checked around it).
    Returns:
        the CronJobs (``NAME.json`` each), the secret list and the notes; or, when a
        job cannot run exactly as in cron, only the problems.
    """
    done, problems = each_job(repo.jobs, TARGET, lambda job: _translate(job, image, year))
    try:
        unique_names({job.name: cronjob_name(job.name) for job, _ in done}, "CronJob name")
        secrets = secret_mapping(ref for job, _ in done for ref in job.secrets)
    except Unexportable as exc:
        problems.append(Problem("jobs/", None, "", f"cannot export to {TARGET}: {exc.message}"))
    if problems:
        return ExportResult(TARGET, problems=tuple(problems))
    notes = tuple(note for _, (_, job_notes) in done for note in job_notes)
    return ExportResult(
        TARGET,
        documents={f"{m['metadata']['name']}.json": m for _, (m, _) in done},
        jobs=tuple(_summary(job, manifest) for job, (manifest, _) in done),
        secrets=tuple(_secret_rows(repo, secrets)),
        notes=notes,
    )


def _translate(job: Job, image: str, year: int) -> tuple[dict[str, Any], list[str]]:
    zone = job_zone(job)
    schedule = kubernetes_schedule(job.schedule)
    differs = clock_change_notes(job.schedule, zone, year)
    notes = [f"{job.name}: {note}" for note in differs]
    if job.jitter_seconds:
        notes.append(f"{job.name}: jitter not exported: a CronJob starts at its minute")
    return cronjob(job, schedule, zone, image, "; ".join(differs)), notes


def cronjob(
    job: Job, schedule: str, zone: str, image: str, note: str | None = None
) -> dict[str, Any]:
    """Return one job's CronJob manifest.

    Args:
        job: the job. schedule: its ``kubernetes_schedule``. zone: its IANA zone.
        image: the container image. note: a difference to record as an annotation.
    """
    name = cronjob_name(job.name)
    labels = {"app.kubernetes.io/managed-by": "cronsync", "app.kubernetes.io/name": name}
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,  # cron does not retry a failed run
        "template": {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [_container(job, image)]},
        },
    }
    if job.timeout_seconds is not None:
        job_spec["activeDeadlineSeconds"] = job.timeout_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "labels": labels, "annotations": _annotations(job, note)},
        "spec": {
            "schedule": schedule,
            "timeZone": zone,
            "concurrencyPolicy": _POLICY[job.concurrency],
            "suspend": not job.enabled,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec},
        },
    }


def _annotations(job: Job, note: str | None) -> dict[str, str]:
    annotations = {
        ANNOTATION + "job": job.name,
        ANNOTATION + "file": job.file,
        ANNOTATION + "owner": job.owner,
        ANNOTATION + "description": job.description,
        ANNOTATION + "cron-schedule": job.schedule,
    }
    if not job.enabled and job.reason:
        annotations[ANNOTATION + "disabled-reason"] = job.reason
    if note:
        annotations[ANNOTATION + "differs"] = note
    return annotations


def _container(job: Job, image: str) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(job.env.items())]
    for ref in sorted(job.secrets, key=lambda item: item.env):
        secret, key = secret_target(ref)
        env.append({"name": ref.env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return {
        "name": "job",
        "image": image,
        "workingDir": posixpath.normpath(posixpath.join(REPO_DIR, job.workdir or ".")),
        "command": _command(job),
        "env": env,
    }


def _command(job: Job) -> list[str]:
    if job.shell is not None:
        return ["/bin/sh", "-c", job.shell]
    program, *args = job.command
    if "/" in program and not program.startswith("/"):
        program = posixpath.normpath(posixpath.join(REPO_DIR, program))
    return [program, *args]


def _summary(job: Job, manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    return {
        "job": job.name,
        "file": job.file,
        "cronjob": manifest["metadata"]["name"],
        "schedule": spec["schedule"],
        "timezone": spec["timeZone"],
        "enabled": job.enabled,
    }


def _secret_rows(repo: JobRepo, mapping: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    users: dict[str, list[str]] = {}
    for job in repo.jobs:
        for ref in job.secrets:
            users.setdefault(source_of(ref), []).append(job.name)
    return [
        {"reference": source, "secret": name, "key": key, "jobs": sorted(set(users[source]))}
        for source, (name, key) in sorted(mapping.items())
    ]
