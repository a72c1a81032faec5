"""Job repository text -> model, with every problem located.

Pure: the caller reads the files (see ``cronsync.repo.files``) and hands their text in.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from cronsync.core import schema
from cronsync.core.durations import parse_duration
from cronsync.core.model import (
    Defaults,
    Job,
    JobRepo,
    Problem,
    RepoSettings,
    SecretRef,
    SuccessSpec,
)
from cronsync.core.tomlcheck import Located, check_table, parse_toml

JOB_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
REPO_CONFIG = "cronsync.toml"
SSM_PREFIX = "ssm:"


@dataclass(frozen=True)
class SourceFile:
    """One file of the repository: its path relative to the root (posix) and its text."""

    path: str
    text: str


def job_name_for(path: str) -> str:
    """Return the job name a job file's path gives (its file name without ``.toml``)."""
    return posixpath.basename(path)[: -len(".toml")]


def parse_repo_config(
    source: Optional[SourceFile],
) -> tuple[Defaults, RepoSettings, list[Problem]]:
    """Parse ``cronsync.toml``; an absent file means empty defaults and default settings.

    Returns:
        The job defaults (those of the right type, where the file has problems), the
        repo-wide settings (the defaults' where the file has problems) and the problems.
    """
    if source is None:
        return Defaults(), RepoSettings(), []
    doc, problems = parse_toml(source.path, source.text)
    if doc is None:
        return Defaults(), RepoSettings(), problems
    problems = check_table(doc, doc.data, schema.REPO_FIELDS)
    bad = {problem.field for problem in problems}
    raw = doc.data.get("defaults", {})
    if not isinstance(raw, dict) or "defaults" in bad:
        raw = {}
    table = {key: value for key, value in raw.items() if f"defaults.{key}" not in bad}
    defaults = Defaults(
        user=table.get("user"),
        timezone=table.get("timezone"),
        timeout_seconds=_seconds(table.get("timeout")),
        concurrency=table.get("concurrency", "forbid"),
        jitter_seconds=_seconds(table.get("jitter")) or 0,
        lines={key: line for key, line in doc.lines.items() if key.startswith("defaults.")},
        broken=frozenset(key for key in raw if key not in table),
    )
    if problems:  # the good defaults still apply, so the jobs' own problems are true
        return defaults, RepoSettings(), problems
    cloudwatch: Mapping[str, Any] = doc.data.get("cloudwatch", {})
    settings = RepoSettings(
        log_group=cloudwatch.get("log_group", RepoSettings.log_group),
        metrics_namespace=cloudwatch.get("metrics_namespace", RepoSettings.metrics_namespace),
    )
    return defaults, settings, []


def parse_defaults(source: Optional[SourceFile]) -> tuple[Defaults, list[Problem]]:
    """Parse the job defaults of ``cronsync.toml`` (see ``parse_repo_config``)."""
    defaults, _settings, problems = parse_repo_config(source)
    return defaults, problems


def _seconds(value: Optional[str]) -> Optional[int]:
    return None if value is None else parse_duration(value)


def _secret_refs(table: Mapping[str, Any]) -> tuple[SecretRef, ...]:
    refs = []
    for env, ref in sorted(table.items()):
        if isinstance(ref, dict):
            refs.append(SecretRef(env, "secretsmanager", ref["secret"], ref.get("key")))
        elif ref.startswith(SSM_PREFIX):
            refs.append(SecretRef(env, "ssm", ref[len(SSM_PREFIX) :]))
        else:
            refs.append(SecretRef(env, "secretsmanager", ref))
    return tuple(refs)


def _missing_required(doc: Located, data: Mapping[str, Any], defaults: Defaults) -> list[Problem]:
    problems = []
    for item in schema.JOB_FIELDS:
        if item.required and item.name not in data:
            if item.name == "user" and defaults.user:
                continue
            if item.name in defaults.broken:  # reported once, at cronsync.toml
                continue
            where = " (here or in cronsync.toml [defaults])" if item.default else ""
            problems.append(
                Problem(
                    doc.path,
                    None,
                    item.name,
                    f"required{where}; {item.description[0].lower()}{item.description[1:]}",
                )
            )
    return problems


def _build_job(doc: Located, name: str, data: Mapping[str, Any], defaults: Defaults) -> Job:
    success: Mapping[str, Any] = data.get("success", {})
    migration: Mapping[str, Any] = data.get("migration", {})
    timeout = data.get("timeout")
    jitter = data.get("jitter")
    return Job(
        name=name,
        file=doc.path,
        description=data["description"],
        owner=data["owner"],
        schedule=data["schedule"].strip(),
        user=data.get("user", defaults.user),
        timezone=data.get("timezone", defaults.timezone),
        command=tuple(data.get("command", ())),
        shell=data.get("shell"),
        workdir=data.get("workdir"),
        env=dict(sorted(data.get("env", {}).items())),
        secrets=_secret_refs(data.get("secrets", {})),
        timeout_seconds=defaults.timeout_seconds if timeout is None else parse_duration(timeout),
        concurrency=data.get("concurrency", defaults.concurrency),
        jitter_seconds=defaults.jitter_seconds if jitter is None else parse_duration(jitter),
        enabled=data.get("enabled", True),
        reason=data.get("reason"),
        hosts=tuple(data.get("hosts", ())),
        groups=tuple(data.get("groups", ())),
        run_on=data.get("run_on", "every-host"),
        fleet_unreachable=data.get("fleet_unreachable", "skip"),
        success=SuccessSpec(
            within_seconds=_seconds(success.get("within")),
            check=tuple(success.get("check", ())),
        ),
        verified_by=migration.get("verified_by"),
        verified_on=migration.get("verified_on"),
        lines=dict(doc.lines),
    )


def parse_job(source: SourceFile, defaults: Defaults) -> tuple[Optional[Job], list[Problem]]:
    """Parse one job file against the job schema, applying the repository defaults.

    Returns:
        The job (None when the file has any structural problem, or relies on a default
        ``cronsync.toml`` got wrong: that problem is cronsync.toml's) and the problems.
    """
    name = job_name_for(source.path)
    problems = []
    if not JOB_NAME.fullmatch(name):
        problems.append(
            Problem(
                source.path,
                None,
                "",
                f"invalid job name {name!r}: use "
                "lowercase letters, digits, '-' and '_', starting with a "
                "letter, at most 64 characters (the name is the file name)",
            )
        )
    doc, syntax = parse_toml(source.path, source.text)
    if doc is None:
        return None, problems + syntax
    problems += check_table(doc, doc.data, schema.JOB_FIELDS)
    problems += _missing_required(doc, doc.data, defaults)
    inherits_broken = any(
        item.required and item.name not in doc.data and item.name in defaults.broken
        for item in schema.JOB_FIELDS
    )
    if problems or inherits_broken:
        return None, problems
    return _build_job(doc, name, doc.data, defaults), []


ParseOne = Callable[[str, Defaults], tuple[Optional[Job], list[Problem]]]
"""Parses the job file at a path with the repository defaults (see :func:`parse_job`)."""


def parse_repo(
    config: Optional[SourceFile], job_files: Sequence[SourceFile]
) -> tuple[JobRepo, list[Problem]]:
    """Parse a whole repository: ``cronsync.toml`` plus every job file.

    Job files with problems are left out of the returned repo; their problems are
    returned. Two files giving the same job name (in different folders) are both
    reported.

    Returns:
        The repository model and every problem found, in file order.
    """
    texts = {source.path: source for source in job_files}
    return assemble_repo(
        config, list(texts), lambda path, defaults: parse_job(texts[path], defaults)
    )


def assemble_repo(
    config: Optional[SourceFile], paths: Sequence[str], parse_one: ParseOne
) -> tuple[JobRepo, list[Problem]]:
    """Parse ``cronsync.toml`` and build the repository from the job files at ``paths``,
    each parsed by ``parse_one`` (a build that reuses earlier results passes its own),
    as :func:`parse_repo` does: a second file of a job name is reported, not parsed.

    Returns:
        The repository model and every problem found, in file order.
    """
    defaults, settings, problems = parse_repo_config(config)
    jobs = []
    first_path: dict[str, str] = {}
    for path in sorted(paths):
        name = job_name_for(path)
        if name in first_path:
            problems.append(
                Problem(
                    path,
                    None,
                    "",
                    f"duplicate job name {name!r}: {first_path[name]} already defines it",
                )
            )
            continue
        first_path[name] = path
        job, job_problems = parse_one(path, defaults)
        problems += job_problems
        if job is not None:
            jobs.append(job)
    return JobRepo(defaults, tuple(jobs), settings), problems
