"""Check the scripts and folders that jobs point at (adapter: files + subprocesses).

For every enabled job whose command (or success check) names a file in the
repository (``["scripts/x.sh"]``): it must exist, stay inside the repository after
symlinks are followed, be a regular file, be executable, start with a shebang, and
parse (``bash -n`` for shell scripts, ``compile`` for Python).

When the command starts with an interpreter (``["python3", "scripts/x.py"]``,
``["bash", "x.sh"]``), its first argument is a script of the repository too, looked
up from the job's working folder: it must exist, stay inside and be a regular file,
and it must parse, but it need not be executable nor have a shebang. A job whose
workdir is an absolute host path runs host files, which are not checked.

Shell strings and shell scripts are parsed in few processes (``shellsyntax``), with
the verdicts of one parse each; shellcheck runs once per dialect and chunk of files.
shellcheck findings are warnings when shellcheck is installed and ``lint`` is on;
it reads nothing the repository chooses outside it (see ``shellcheck``).
Shell strings are parsed with ``sh -n``. Nothing here raises for a file's content:
every finding is a located ``Problem``.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import shutil
import stat
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

from cronsync.core.model import WARNING, Job, Problem
from cronsync.core.validate import is_repo_path
from cronsync.repo.files import describe_kind
from cronsync.repo.shellcheck import shellcheck
from cronsync.repo.shellsyntax import Parse, parse_scripts, parse_strings

MAX_SCRIPT_BYTES = 10 * 1024 * 1024
_SHELLS = ("sh", "bash", "dash", "ksh")  # parsed with bash -n; shellcheck knows them all
_INTERPRETER = re.compile(
    r"sh|bash|dash|ksh|zsh|python|python3|python3\.\d+|perl|ruby|node|php|Rscript"
)
# What ``node NAME`` tries when NAME itself is not a file (CommonJS resolution).
_NODE_CANDIDATES = (".js", ".json", ".node", "/package.json", "/index.js")
_PYTHON_CANDIDATES = ("/__main__.py",)  # what ``python3 NAME`` runs for a folder
_BASH_ERROR = re.compile(r"line (\d+): (.*)")


def interpreted_script(argv: Sequence[str]) -> Optional[tuple[str, str]]:
    """Return ``(interpreter, script)`` when ``argv`` runs a script through an interpreter.

    ``["python3", "scripts/x.py", "--day"]`` gives ``("python3", "scripts/x.py")``;
    an option in second place (``["python3", "-m", "mod"]``), an absolute script path
    or a program that is not a known interpreter gives None.
    """
    if len(argv) < 2:
        return None
    program, script = argv[0], argv[1]
    name = posixpath.basename(program) if program.startswith("/") else program
    if not _INTERPRETER.fullmatch(name) or not script or script.startswith(("-", "/")):
        return None
    return name, script


def _plain(path: str) -> bool:
    """Whether ``path`` names a repository file in the one way the checks name it."""
    return bool(path) and posixpath.normpath(path) == path and not path.startswith("../")


def job_dependencies(job: Job) -> Optional[tuple[str, ...]]:
    """Return the repository paths the checks of ``job`` look at (its programs, the
    scripts interpreters run and the files an interpreter would try instead, its
    working folder), for a build that reuses earlier results.

    Returns:
        The paths, or None when one is spelled in a way that another job could spell
        differently (``./x.sh``, ``a/../x.sh``): the checks of one file are made once
        and named after the first spelling met, so such a job is always checked anew
        with all the others.
    """
    deps: list[str] = []
    for argv in (job.command, job.success.check):
        if argv and is_repo_path(argv[0]) and not argv[0].startswith("/"):
            deps.append(argv[0])
        run = interpreted_script(argv)
        if run is not None and not (job.workdir and job.workdir.startswith("/")):
            relative = posixpath.join(job.workdir or "", run[1])
            suffixes = (*_NODE_CANDIDATES, *_PYTHON_CANDIDATES)
            deps += [relative] + [relative + suffix for suffix in suffixes]
    if job.workdir and not job.workdir.startswith("/"):
        deps.append(job.workdir)
    if not all(_plain(dep) for dep in deps):
        return None
    return tuple(dict.fromkeys(deps))


def _dialect(interpreter: str) -> str:
    """Return how a script run by ``interpreter`` is parsed: "bash", "zsh", "python" or ""."""
    if interpreter in _SHELLS:
        return "bash"
    if interpreter == "zsh":
        return "zsh"
    return "python" if interpreter.startswith("python") else ""


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
        self._seen: dict[tuple[str, str], list[Problem]] = {}
        self._lint_groups: dict[str, list[str]] = {}  # shell ("" = its shebang) -> scripts
        self._programs: dict[str, tuple[Optional[str], list[Problem]]] = {}
        self._shell_jobs: list[Job] = []  # jobs with a shell string, parsed together
        self._shell_scripts: dict[str, list[str]] = {}  # shell -> scripts it parses

    def check_jobs(self, jobs: tuple[Job, ...]) -> list[Problem]:
        """Check the files of every enabled job; return every problem found.

        Raises:
            StoppedError: cronsync is shutting down.
        """
        problems: list[Problem] = []
        for job in jobs:
            if job.enabled:
                problems += self._check_job(job)
        problems += self._parse_shell_strings()
        for shell, programs in sorted(self._shell_scripts.items()):
            problems += self._parse_shell_scripts(shell, programs)
        if self.lint:
            for shell, programs in sorted(self._lint_groups.items()):
                problems += shellcheck(self.root, programs, shell)
        return problems

    def _check_job(self, job: Job) -> list[Problem]:
        """Check one job's program, interpreted script, check, workdir and shell line."""
        problems = []
        for field, argv in (("command", job.command), ("success.check", job.success.check)):
            if argv and is_repo_path(argv[0]) and not argv[0].startswith("/"):
                problems += self._check_program(job, field, argv[0])
            run = interpreted_script(argv)
            if run is not None:
                problems += self._check_interpreted(job, field, *run)
        if job.workdir and not job.workdir.startswith("/"):
            target = self.root / job.workdir
            if not target.is_dir() or not self._inside(target):
                problems.append(
                    job.problem("workdir", f"{job.workdir!r} is not a folder of the repository")
                )
        if job.shell:
            self._shell_jobs.append(job)  # parsed with the others by check_jobs
        return problems

    def _inside(self, path: Path) -> bool:
        """Return whether ``path`` stays inside the repository once symlinks are followed."""
        try:
            path.resolve().relative_to(self.real_root)
        except (ValueError, OSError, RuntimeError):
            return False
        return True

    def _once(self, path: Path, purpose: str, check: Callable[[], list[Problem]]) -> list[Problem]:
        """Run ``check`` for one file and purpose once; later calls get the same problems."""
        try:
            key = (path.resolve().as_posix(), purpose)
        except (OSError, RuntimeError):
            key = (path.as_posix(), purpose)
        if key not in self._seen:
            self._seen[key] = check()
        return self._seen[key]

    def _locate(self, shown: str, path: Path) -> Optional[str]:
        """Return why ``path`` is not a usable file of the repository, else None."""
        if not os.path.lexists(path):
            return f"script {shown} does not exist in the repository"
        if not self._inside(path):
            return f"{shown} is a symlink leading outside the repository"
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            return f"cannot read {shown}: {exc.strerror or exc}"
        if not stat.S_ISREG(mode):
            return f"{shown} is not a regular file (it is {describe_kind(mode)})"
        return None

    def _check_program(self, job: Job, field: str, program: str) -> list[Problem]:
        """Check a command's first item, a repository file cronsync runs directly (each
        program once: thousands of jobs often run the same script)."""
        if program not in self._programs:
            self._programs[program] = self._program_verdict(program)
        message, problems = self._programs[program]
        return [job.problem(field, message)] if message is not None else problems

    def _program_verdict(self, program: str) -> tuple[Optional[str], list[Problem]]:
        """Return why ``program`` cannot be run (for the job's field) or None, and the
        problems of its script."""
        path = self.root / program
        message = self._locate(repr(program), path)
        if message is not None:
            return message, []
        if not _mode_of(path) & stat.S_IXUSR:
            return f"{program!r} is not executable (chmod +x it and commit the mode)", []
        return None, self._once(path, "program", lambda: self._check_script_text(program, path))

    def _check_interpreted(
        self, job: Job, field: str, interpreter: str, script: str
    ) -> list[Problem]:
        """Check the script an interpreter runs, looked up from the job's working folder."""
        if job.workdir and job.workdir.startswith("/"):
            return []  # it starts in a host folder: the script is not the repository's
        relative = posixpath.join(job.workdir or "", script)
        normal = posixpath.normpath(relative)
        if normal == ".." or normal.startswith("../"):
            return [
                job.problem(
                    field, f"script {script!r} run by {interpreter} is outside the repository"
                )
            ]
        relative = self._resolve_like(interpreter, relative)
        shown = f"{posixpath.normpath(relative)!r} run by {interpreter}"
        path = self.root / relative
        message = self._locate(shown, path)
        if message is not None:
            return [job.problem(field, message)]
        dialect = _dialect(interpreter)
        if dialect == "bash" and self.lint:
            self._lint_groups.setdefault(interpreter, []).append(relative)
        name = posixpath.normpath(relative)
        return self._once(path, dialect, lambda: self._check_syntax(name, path, dialect))

    def _resolve_like(self, interpreter: str, relative: str) -> str:
        """Return the file ``interpreter`` really reads for ``relative``.

        ``python3 app`` runs ``app/__main__.py`` when ``app`` is a folder; ``node app``
        tries ``app.js``, ``app/index.js``... When nothing better is found, ``relative``
        itself is returned, so problems name what the job wrote.
        """
        if not (self.root / relative).is_dir() and os.path.lexists(self.root / relative):
            return relative
        candidates: tuple[str, ...] = ()
        if interpreter == "node":
            candidates = _NODE_CANDIDATES
        elif _dialect(interpreter) == "python":
            candidates = _PYTHON_CANDIDATES
        for suffix in candidates:
            if os.path.lexists(self.root / (relative + suffix)):
                return relative + suffix
        return relative

    def _check_script_text(self, program: str, path: Path) -> list[Problem]:
        """Check a directly run script's shebang, then parse it as its interpreter would."""
        try:
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
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
        dialect = _dialect(interpreter)
        if dialect == "bash" and self.lint:
            self._lint_groups.setdefault("", []).append(program)
        return self._once(path, dialect, lambda: self._check_syntax(program, path, dialect))

    def _check_syntax(self, name: str, path: Path, dialect: str) -> list[Problem]:
        """Parse one script as ``dialect`` ("" checks nothing); ``name`` locates problems."""
        if not dialect:
            return []
        data, problems = _read_script(name, path)
        if data is None:
            return problems
        if dialect == "python":
            return _python_syntax(name, data)
        if dialect == "zsh" and shutil.which("zsh") is None:
            return []  # bash -n would misread zsh syntax; no zsh, no check
        self._shell_scripts.setdefault(dialect, []).append(name)  # parsed by check_jobs
        return []

    def _parse_shell_scripts(self, shell: str, programs: list[str]) -> list[Problem]:
        """Parse ``programs`` with ``shell -n`` (never runs them); return their errors."""
        problems = []
        for program, parse in zip(programs, parse_scripts(shell, programs, self.root)):
            problems += _script_problems(shell, program, parse)
        return problems

    def _parse_shell_strings(self) -> list[Problem]:
        """Parse every collected job's shell string with ``sh -n``; return the errors."""
        jobs = self._shell_jobs
        parses = parse_strings([job.shell or "" for job in jobs])
        problems = []
        for job, parse in zip(jobs, parses):
            problems += _shell_string_problems(job, parse)
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


def _mode_of(path: Path) -> int:
    """Return ``path``'s mode (symlinks followed), 0 when it cannot be read."""
    try:
        return path.stat().st_mode
    except OSError:
        return 0


def _script_problems(shell: str, program: str, parse: Parse) -> list[Problem]:
    """The problems ``shell -n`` found in ``program``: up to five located errors."""
    if parse.failure is not None:
        return [Problem(program, None, "", f"could not run {shell} -n: {parse.failure}", WARNING)]
    if parse.returncode == 0:
        return []
    return [_bash_problem(program, line) for line in parse.stderr.splitlines()[:5] if line.strip()]


def _shell_string_problems(job: Job, parse: Parse) -> list[Problem]:
    """The problem ``sh -n`` found in ``job``'s shell string, on its ``shell`` field."""
    if parse.failure is not None:
        return [job.problem("shell", f"could not run sh -n: {parse.failure}", WARNING)]
    if parse.returncode == 0:
        return []
    reason = parse.stderr.strip().splitlines()[-1] if parse.stderr.strip() else "syntax error"
    return [job.problem("shell", f"/bin/sh cannot parse it: {reason.split(': ', 1)[-1]}")]


def _bash_problem(program: str, line: str) -> Problem:
    match = _BASH_ERROR.search(line)
    if match:
        return Problem(program, int(match.group(1)), "", match.group(2))
    return Problem(program, None, "", line.split(": ", 1)[-1])


def _read_script(name: str, path: Path) -> tuple[Optional[bytes], list[Problem]]:
    """Read a script for parsing, without blocking on a FIFO.

    Returns:
        Its bytes, or None and the problem: unreadable, not a regular file (an
        error), or over ``MAX_SCRIPT_BYTES`` (a warning: it is not parsed).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return None, [Problem(name, None, "", f"cannot read: {exc.strerror or exc}")]
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = describe_kind(info.st_mode)
            return None, [Problem(name, None, "", f"is {kind}, not a regular file")]
        if info.st_size > MAX_SCRIPT_BYTES:
            limit = MAX_SCRIPT_BYTES // (1024 * 1024)
            message = f"larger than {limit} MiB: its syntax is not checked"
            return None, [Problem(name, None, "", message, WARNING)]
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(MAX_SCRIPT_BYTES + 1), []
    except OSError as exc:
        return None, [Problem(name, None, "", f"cannot read: {exc.strerror or exc}")]
    finally:
        os.close(fd)


def _python_syntax(program: str, source: bytes) -> list[Problem]:
    """Compile a Python script (never run it); every failure becomes a Problem.

    A zip application or a ``.pyc`` file is not source code: it is not compiled.
    """
    if program.endswith(".pyc") or zipfile.is_zipfile(io.BytesIO(source)):
        return []
    try:
        with warnings.catch_warnings():  # a SyntaxWarning is the script's business
            warnings.simplefilter("ignore")
            compile(source, program, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [Problem(program, exc.lineno, "", f"Python syntax error: {exc.msg}")]
    except (MemoryError, RecursionError) as exc:
        # CPython's parser gives up on very deep nesting (x = ------...1): so would python3.
        kind = type(exc).__name__
        message = f"Python cannot compile it ({kind}): too deeply nested or too large"
        return [Problem(program, None, "", message)]
    except Exception as exc:  # a crash of compile must not crash the gate
        return [Problem(program, None, "", f"cannot compile: {type(exc).__name__}: {exc}")]
    return []
