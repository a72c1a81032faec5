"""What the checks of each job file concluded, kept from one build to the next (pure).

A sync builds every commit as a whole, but most of a commit is what the installed
release already had. The build of a release therefore keeps, per job file, the parsed
job, every problem its checks found (parse, values, the scripts it runs) and the
repository paths those checks looked at. The next build reuses such a record when the
job file's git blob is the same, no path the checks looked at changed, and nothing
that decides every job changed: the host's facts (users, zone, agent config, cronsync's
rules), ``cronsync.toml``, ``.gitattributes`` files. A repository with a symlink is
always checked whole: a link can make any path stand for another.

Nothing here touches a file: :mod:`cronsync.host.checkcache` reads and writes the
cache, :mod:`cronsync.repo.gate` makes and uses the records.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from cronsync.core.manifest import REPO_CONFIG
from cronsync.core.model import Job, Problem, SecretRef, SuccessSpec

CACHE_VERSION = 1
"""The layout of the cache document; a document of another version is not used."""
SYMLINK_MODE = "120000"
ATTRIBUTES = ".gitattributes"


@dataclass(frozen=True)
class CheckedFile:
    """What the checks of one job file concluded.

    Attributes:
        blob: the file's git mode and blob id (``"100644 3b18e5..."``).
        job: the parsed job, or None when the file did not parse.
        problems: every problem its checks found, wherever located (the scripts it
            runs included).
        deps: the repository paths (other than the file itself) its checks looked at.
    """

    blob: str
    job: Optional[Job]
    problems: tuple[Problem, ...]
    deps: tuple[str, ...]


@dataclass(frozen=True)
class CheckCache:
    """The records of one build.

    Attributes:
        facts: the key of everything outside the repository the checks depended on.
        listing: every path of the commit -> its git mode and blob id.
        files: job file path -> its record.
    """

    facts: str
    listing: Mapping[str, str]
    files: Mapping[str, CheckedFile]


def touches(changed: str, dep: str) -> bool:
    """Return whether a change at path ``changed`` can alter what a check of ``dep``
    saw: the same path, a file inside the folder ``dep``, or a folder above ``dep``."""
    return changed == dep or changed.startswith(dep + "/") or dep.startswith(changed + "/")


def changed_paths(old: Mapping[str, str], new: Mapping[str, str]) -> set[str]:
    """Return the paths added, removed or changed (content or mode) between listings."""
    return {path for path in old.keys() | new.keys() if old.get(path) != new.get(path)}


def _decides_all(path: str) -> bool:
    return path == REPO_CONFIG or posixpath.basename(path) == ATTRIBUTES


def reusable(
    cache: Optional[CheckCache], facts: str, listing: Mapping[str, str]
) -> dict[str, CheckedFile]:
    """Return the records of ``cache`` that still hold for a commit whose paths are
    ``listing``, on a host whose facts key is ``facts``.

    Returns:
        Job file path -> record, for each job file whose blob is unchanged and none of
        whose dependencies changed; {} when there is no cache, the facts differ,
        ``cronsync.toml`` or a ``.gitattributes`` changed, or either commit has a
        symlink or a path git could not spell in UTF-8.
    """
    if cache is None or cache.facts != facts:
        return {}
    changed = changed_paths(cache.listing, listing)
    if any(_decides_all(path) for path in changed):
        return {}
    for entries in (cache.listing, listing):
        if any(mode.startswith(SYMLINK_MODE) for mode in entries.values()):
            return {}
        if any("\ufffd" in path for path in entries):
            return {}
    others = sorted(changed)
    return {
        path: record
        for path, record in cache.files.items()
        if listing.get(path) == record.blob
        and not any(touches(change, dep) for dep in record.deps for change in others)
    }


# --- the cache as a JSON document ------------------------------------------------------


def job_as_dict(job: Job) -> dict[str, Any]:
    """Return every field of ``job`` as JSON-ready data (see :func:`job_from_dict`)."""
    return {
        "name": job.name,
        "file": job.file,
        "description": job.description,
        "owner": job.owner,
        "schedule": job.schedule,
        "user": job.user,
        "timezone": job.timezone,
        "command": list(job.command),
        "shell": job.shell,
        "workdir": job.workdir,
        "env": dict(job.env),
        "secrets": [ref.as_dict() for ref in job.secrets],
        "timeout_seconds": job.timeout_seconds,
        "concurrency": job.concurrency,
        "run_on": job.run_on,
        "fleet_unreachable": job.fleet_unreachable,
        "jitter_seconds": job.jitter_seconds,
        "enabled": job.enabled,
        "reason": job.reason,
        "hosts": list(job.hosts),
        "groups": list(job.groups),
        "success": {
            "within_seconds": job.success.within_seconds,
            "check": list(job.success.check),
        },
        "verified_by": job.verified_by,
        "verified_on": job.verified_on,
        "lines": dict(job.lines),
    }


def job_from_dict(data: Mapping[str, Any]) -> Job:
    """Rebuild a job from :func:`job_as_dict`'s form.

    Raises:
        KeyError, TypeError, ValueError: the data is not that form.
    """
    success = data["success"]
    secrets = tuple(
        SecretRef(str(ref["env"]), str(ref["store"]), str(ref["name"]), ref["key"])
        for ref in data["secrets"]
    )
    fields = dict(data)
    fields.update(
        command=tuple(data["command"]),
        env=dict(data["env"]),
        secrets=secrets,
        hosts=tuple(data["hosts"]),
        groups=tuple(data["groups"]),
        success=SuccessSpec(success["within_seconds"], tuple(success["check"])),
        lines={str(key): int(line) for key, line in data["lines"].items()},
    )
    return Job(**fields)


def encode_cache(cache: CheckCache) -> dict[str, Any]:
    """Return ``cache`` as a JSON-ready document."""
    return {
        "version": CACHE_VERSION,
        "facts": cache.facts,
        "listing": dict(cache.listing),
        "files": {
            path: {
                "blob": record.blob,
                "job": None if record.job is None else job_as_dict(record.job),
                "problems": [problem.as_dict() for problem in record.problems],
                "deps": list(record.deps),
            }
            for path, record in cache.files.items()
        },
    }


def decode_cache(data: Any) -> Optional[CheckCache]:
    """Rebuild a cache from :func:`encode_cache`'s document; None for anything else (a
    damaged or older cache only costs a whole build)."""
    try:
        if data["version"] != CACHE_VERSION or not isinstance(data["facts"], str):
            return None
        listing = _strings(data["listing"])
        files = {str(path): _record(item) for path, item in data["files"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return CheckCache(data["facts"], listing, files)


def _strings(data: Mapping[str, Any]) -> dict[str, str]:
    if not all(isinstance(value, str) for value in data.values()):
        raise ValueError("not a listing")
    return {str(path): value for path, value in data.items()}


def _record(item: Mapping[str, Any]) -> CheckedFile:
    job = None if item["job"] is None else job_from_dict(item["job"])
    problems = tuple(_problem(problem) for problem in item["problems"])
    deps = tuple(str(dep) for dep in _list(item["deps"]))
    return CheckedFile(str(item["blob"]), job, problems, deps)


def _problem(data: Mapping[str, Any]) -> Problem:
    if not isinstance(data, dict) or set(data) != {"file", "line", "field", "message", "severity"}:
        raise ValueError("not a problem")
    return Problem.from_dict(data)


def _list(value: Any) -> Iterable[Any]:
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value
