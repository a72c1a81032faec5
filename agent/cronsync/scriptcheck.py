"""Check the scripts and folders that jobs point at (adapter: files + subprocesses).

For every enabled job whose command (or success check) names a file in the
repository: it must exist, stay inside the repository after symlinks are followed,
be executable, start with a shebang, and parse (``bash -n`` for shell scripts,
``compile`` for Python). shellcheck findings are warnings when shellcheck is
installed and ``lint`` is on. Shell strings are parsed with ``sh -n``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import warnings
from pathlib import Path

from .model import WARNING, Job, Problem
from .process import run_capture
from .validate import is_repo_path

_SHELLS = ("sh", "bash", "dash", "ksh")
_BASH_ERROR = re.compile(r"line (\d+): (.*)")
_SHELLCHECK_LINE = re.compile(r"^(.*?):(\d+):\d+: (\w+): (.*)$")


class ScriptChecker:
    """Checks the files below one repository root, each file once.

    Args:
        root: the repository (or exported release) directory.
        lint: run shellcheck when it is installed (warnings only).
    """

    def __init__(self, root: Path, lint: bool = False) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.lint = lint and shutil.which("shellcheck") is not None
        self._seen: dict[str, list[Problem]] = {}
        self._shell_scripts: list[str] = []

    def check_jobs(self, jobs: tuple[Job, ...]) -> list[Problem]:
        """Check the files of every enabled job; return every problem found."""
        problems: list[Problem] = []
        for job in jobs:
            if job.enabled:
                problems += self._check_job(job)
        if self.lint and self._shell_scripts:
            problems += self._shellcheck(self._shell_scripts)
        return problems

    def _check_job(self, job: Job) -> list[Problem]:
        problems = []
        for field, argv in (("command", job.command), ("success.check", job.success.check)):
            if argv and is_repo_path(argv[0]) and not argv[0].startswith("/"):
                problems += self._check_program(job, field, argv[0])
        if job.workdir and not job.workdir.startswith("/"):
            target = self.root / job.workdir
            if not target.is_dir() or not self._inside(target):
                problems.append(
                    job.problem("workdir", f"{job.workdir!r} is not a folder of the repository")
                )
        if job.shell:
            problems += self._check_shell_string(job)
        return problems

    def _inside(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.real_root)
        except (ValueError, OSError, RuntimeError):
            return False
        return True

    def _check_program(self, job: Job, field: str, program: str) -> list[Problem]:
        path = self.root / program
        if not os.path.lexists(path):
            return [job.problem(field, f"script {program!r} does not exist in the repository")]
        if not self._inside(path):
            return [job.problem(field, f"{program!r} is a symlink leading outside the repository")]
        if not path.is_file():
            return [job.problem(field, f"{program!r} is not a regular file")]
        if not path.stat().st_mode & stat.S_IXUSR:
            return [
                job.problem(
                    field, f"{program!r} is not executable (chmod +x it and commit the mode)"
                )
            ]
        key = path.resolve().as_posix()
        if key not in self._seen:
            self._seen[key] = self._check_script_text(program, path)
        return self._seen[key]

    def _check_script_text(self, program: str, path: Path) -> list[Problem]:
        try:
            with path.open("rb") as handle:
                head = handle.readline(512)
        except OSError as exc:
            return [Problem(program, None, "", f"cannot read: {exc.strerror or exc}")]
        if not head.startswith(b"#!"):
            return [
                Problem(
                    program,
                    1,
                    "",
                    "no shebang line (#!/bin/bash, "
                    "#!/usr/bin/env python3, ...): cronsync runs it directly",
                )
            ]
        interpreter = _interpreter(head.decode("utf-8", "replace"))
        if interpreter in _SHELLS:
            self._shell_scripts.append(program)
            return self._bash_syntax(program)
        if interpreter.startswith("python"):
            return _python_syntax(program, path)
        return []

    def _bash_syntax(self, program: str) -> list[Problem]:
        try:
            done = run_capture(["bash", "-n", program], cwd=self.root, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [Problem(program, None, "", f"could not run bash -n: {exc}", WARNING)]
        if done.returncode == 0:
            return []
        return [
            _bash_problem(program, line) for line in done.stderr.splitlines()[:5] if line.strip()
        ]

    def _check_shell_string(self, job: Job) -> list[Problem]:
        assert job.shell is not None
        try:
            done = run_capture(["sh", "-n", "-c", job.shell], timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [job.problem("shell", f"could not run sh -n: {exc}", WARNING)]
        if done.returncode == 0:
            return []
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "syntax error"
        return [job.problem("shell", f"/bin/sh cannot parse it: {reason.split(': ', 1)[-1]}")]

    def _shellcheck(self, programs: list[str]) -> list[Problem]:
        try:
            done = run_capture(
                ["shellcheck", "-f", "gcc", "--", *sorted(set(programs))],
                cwd=self.root,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [Problem("scripts", None, "", f"could not run shellcheck: {exc}", WARNING)]
        problems = []
        for line in done.stdout.splitlines():
            match = _SHELLCHECK_LINE.match(line)
            if match:
                file, number, _level, message = match.groups()
                problems.append(Problem(file, int(number), "", f"shellcheck: {message}", WARNING))
        return problems


def _interpreter(shebang: str) -> str:
    """Return the interpreter's base name from a shebang line (``env`` is looked through)."""
    words = shebang[2:].split()
    if not words:
        return ""
    name = os.path.basename(words[0])
    if name == "env":
        rest = [w for w in words[1:] if not w.startswith("-")]
        name = os.path.basename(rest[0]) if rest else ""
    return name


def _bash_problem(program: str, line: str) -> Problem:
    match = _BASH_ERROR.search(line)
    if match:
        return Problem(program, int(match.group(1)), "", match.group(2))
    return Problem(program, None, "", line.split(": ", 1)[-1])


def _python_syntax(program: str, path: Path) -> list[Problem]:
    try:
        source = path.read_bytes()
        with warnings.catch_warnings():  # a SyntaxWarning is the script's business
            warnings.simplefilter("ignore")
            compile(source, program, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [Problem(program, exc.lineno, "", f"Python syntax error: {exc.msg}")]
    except (OSError, ValueError) as exc:
        return [Problem(program, None, "", f"cannot compile: {exc}")]
    return []
