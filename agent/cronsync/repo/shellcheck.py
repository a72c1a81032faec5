"""Run shellcheck over many scripts in few processes (adapter: subprocesses).

shellcheck takes many files at once and names the file in each finding; its JSON
output (``-f json1``) says which file exactly, even for a name with ``:`` in it. Files
go in chunks (:data:`FILES_PER_RUN`, and an argument list well below the kernel's
limit); the findings are the same as one run per file (a test compares them).

Only the given files are read: ``--norc`` (a repository's ``.shellcheckrc`` could set
``external-sources=true``, and one above it is not the repository's), no ``-x`` (a
``# shellcheck source=/root/...`` directive reads nothing) and no ``SHELLCHECK_OPTS``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cronsync.core.model import WARNING, Problem
from cronsync.core.shellbatch import MAX_BATCH_BYTES, batches
from cronsync.repo.process import run_capture

FILES_PER_RUN = 200
"""At most this many files per shellcheck process."""
TIMEOUT = 120.0


def shellcheck(root: Path, programs: Sequence[str], shell: str = "") -> list[Problem]:
    """Run shellcheck on ``programs`` (paths below ``root``; as ``shell`` scripts, ""
    reads their shebangs) and return its findings as located warnings.

    Returns:
        One ``Problem`` per finding (``shellcheck: MESSAGE [SCnnnn]``), or one warning
        on ``scripts`` for a run that failed; never raises for a script's content.

    Raises:
        StoppedError: cronsync is shutting down.
    """
    files = sorted(set(programs))
    problems: list[Problem] = []
    for indexes in batches(files, MAX_BATCH_BYTES):
        for start in range(0, len(indexes), FILES_PER_RUN):
            chunk = [files[i] for i in indexes[start : start + FILES_PER_RUN]]
            problems += _run(root, chunk, shell)
    return problems


def _run(root: Path, files: list[str], shell: str) -> list[Problem]:
    """One shellcheck process over ``files``."""
    dialect = ["--shell", shell] if shell else []
    env = {k: v for k, v in os.environ.items() if k != "SHELLCHECK_OPTS"}
    argv = ["shellcheck", "--norc", "-f", "json1", *dialect, "--", *files]
    try:
        done = run_capture(argv, cwd=root, timeout=TIMEOUT, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [_failure(str(exc))]
    if done.returncode not in (0, 1, 2):  # findings (1), a file it could not read (2)
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return [_failure(lines[0])]
    try:
        comments = json.loads(done.stdout or '{"comments": []}')["comments"]
        return [_finding(comment) for comment in comments]
    except (ValueError, KeyError, TypeError):
        return [_failure("its output could not be read")]


def _finding(comment: dict[str, Any]) -> Problem:
    """One shellcheck comment as a located warning, worded as its gcc format words it."""
    message = f"shellcheck: {comment['message']} [SC{int(comment['code'])}]"
    return Problem(str(comment["file"]), int(comment["line"]), "", message, WARNING)


def _failure(reason: str) -> Problem:
    return Problem("scripts", None, "", f"could not run shellcheck: {reason}", WARNING)
