"""The one place cronsync runs helper programs (bash -n, shellcheck, ...).

Commands are argv tuples built by the caller; nothing here goes through a shell.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class Completed:
    """What a finished program returned."""

    returncode: int
    stdout: str
    stderr: str


def run_capture(
    argv: Sequence[str], *, timeout: float = 60.0, cwd: Optional[Path] = None
) -> Completed:
    """Run ``argv`` to completion and capture its output as text.

    Args:
        argv: the program and its arguments.
        timeout: seconds before the program is killed.
        cwd: directory to run in.

    Returns:
        Its exit code, stdout and stderr (decoded leniently).

    Raises:
        OSError: the program could not be started (not installed, not executable).
        subprocess.TimeoutExpired: it ran longer than ``timeout``.
    """
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return Completed(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )
