"""Who may ask the broker for what: the installed release decides.

A request names a job; it is served only when the caller's uid (from the kernel, not
from the request) is the uid of that job's ``user`` in the installed release's
jobs.json, or root. A job that is not in the release, not installed on this host, or
whose user does not exist here is refused. The release is read again only when
``current`` or its jobs.json changes.
"""

from __future__ import annotations

import os
import pwd
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

from cronsync.core.release import JOBS_FILE
from cronsync.files.paths import path_str
from cronsync.run.jobspec import JobSpec, Release, ShimError, find_job, load_release, state_dir

if TYPE_CHECKING:
    from cronsync.files.paths import StrPath


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused (one line, no secret)."""

    reason: str


class InstalledJobs:
    """The installed release as the broker sees it, re-read when it changes.

    Args:
        root: the host's ``paths.root``.
    """

    def __init__(self, root: StrPath) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._key: Optional[tuple[str, int, int, int]] = None
        self._release: Optional[Release] = None

    def release(self) -> Release:
        """Return the installed release (cached while ``current`` and its jobs.json
        stay the same file).

        Raises:
            ShimError: nothing is installed, or the release cannot be read.
        """
        try:
            installed = os.path.realpath(path_str(state_dir(self.root), "current"), strict=True)
        except OSError:
            installed = None
        key = _identity(installed) if installed is not None else None
        with self._lock:
            if key is not None and key == self._key and self._release is not None:
                return self._release
        release = load_release(self.root)
        # the key of what was read (``current`` may have moved between the two looks)
        with self._lock:
            self._key, self._release = _identity(release.directory), release
        return release

    def authorise(self, uid: int, job_name: str) -> Union[JobSpec, Refusal]:
        """Return the job when ``uid`` may ask for it, else why not.

        Args:
            uid: the caller's uid, as the kernel reported it.
            job_name: the job the request names.
        """
        try:
            release = self.release()
            job = find_job(release, job_name)
        except ShimError as exc:
            return Refusal(exc.message)
        if not job.installed:
            return Refusal(f"job {job_name!r} is not installed on this host")
        user = job.raw.get("user")
        expected = _uid_of(user)
        if expected is None:
            return Refusal(f"job {job_name!r} runs as {user!r}, which is not a user here")
        if uid not in (0, expected):
            return Refusal(f"job {job_name!r} runs as {user} (uid {expected}), not uid {uid}")
        return job


def _identity(directory: str) -> Optional[tuple[str, int, int, int]]:
    """A release directory and its jobs.json's inode, size and mtime (None: unreadable)."""
    try:
        info = os.stat(path_str(directory, JOBS_FILE))
    except OSError:
        return None
    return directory, info.st_ino, info.st_size, info.st_mtime_ns


def _uid_of(user: Any) -> Optional[int]:
    """Return the uid of the user name ``user`` (None: not a user here)."""
    if not isinstance(user, str) or not user:
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def job_secrets(job: JobSpec) -> list[Mapping[str, Any]]:
    """Return the job's declared secret references (jobs.json ``secrets``)."""
    refs = job.raw.get("secrets") or []
    return [ref for ref in refs if isinstance(ref, dict)] if isinstance(refs, list) else []
