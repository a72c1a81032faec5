"""Read a job repository's files from a directory (adapter: filesystem only).

Turns a directory into the ``SourceFile`` texts that ``manifest`` parses, reporting
files it cannot use (not UTF-8, unreadable, not ending in ``.toml``) as Problems
instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .manifest import REPO_CONFIG, SourceFile
from .model import WARNING, Problem

JOBS_DIR = "jobs"
MAX_FILE_BYTES = 1024 * 1024


def _read_text(root: Path, path: Path) -> tuple[Optional[SourceFile], list[Problem]]:
    relative = path.relative_to(root).as_posix()
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None, [Problem(relative, None, "", "file is larger than 1 MiB")]
        data = path.read_bytes()
    except OSError as exc:
        return None, [Problem(relative, None, "", f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [Problem(relative, line, "", "not valid UTF-8 text")]
    return SourceFile(relative, text), []


def read_repo(root: Path) -> tuple[Optional[SourceFile], list[SourceFile], list[Problem]]:
    """Read ``cronsync.toml`` and every ``jobs/**/*.toml`` below ``root``.

    Returns:
        The repo config (None when absent), the job files sorted by path, and the
        problems with files that could not be read. Hidden files are skipped; other
        files under ``jobs/`` that are not ``.toml`` get a warning (a typo such as
        ``x.tml`` would otherwise silently drop a job).
    """
    problems: list[Problem] = []
    config: Optional[SourceFile] = None
    config_path = root / REPO_CONFIG
    if config_path.is_file():
        config, problems = _read_text(root, config_path)
    jobs_dir = root / JOBS_DIR
    if not jobs_dir.is_dir():
        problems.append(
            Problem(JOBS_DIR, None, "", "no jobs/ directory: is this a cronsync job repository?")
        )
        return config, [], problems
    files: list[SourceFile] = []
    for path in sorted(jobs_dir.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(jobs_dir).parts):
            continue
        if path.is_dir():
            continue
        if path.suffix != ".toml" or not path.is_file():
            problems.append(Problem(relative, None, "", "ignored: job files end in .toml", WARNING))
            continue
        source, read_problems = _read_text(root, path)
        problems += read_problems
        if source is not None:
            files.append(source)
    return config, files, problems
