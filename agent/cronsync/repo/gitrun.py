"""Running git for cronsync: the one git seam, its error translation, credentials.

Every git command runs through :func:`run_git` (``git archive`` streams through
:func:`cronsync.repo.gitexport.export_commit`'s own process), both started by
:mod:`cronsync.repo.process`: git never prompts a human (no terminal, its own session),
dies with cronsync, is stopped by the agent's SIGTERM, and network operations are
ended after a timeout. :func:`failure_reason` turns git's stderr into a short reason
whose URLs have their credentials masked; :func:`is_corruption` and
:func:`is_write_failure` tell a damaged checkout (clone it afresh) from a full disk or
another failed write (keep it: a clone would fail the same way).

Credentials in an ``https://user:secret@host/...`` URL, or a token in its query string
(``?access_token=...``), never reach git's command line (``ps`` shows it to every local
user) nor ``.git/config``: git gets the URL without them, and asks our askpass program
(a fixed script next to the checkout) for them, which answers from the environment of
that one git process (:func:`prepare_remote`).

With :mod:`cronsync.repo.gitsource` and :mod:`cronsync.repo.gitexport`, the only modules that
import GitPython; :class:`GitFailed` never leaves them.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import git

from cronsync.core.errors import CronsyncError, InstallError, SourceError
from cronsync.core.urls import redact_url, split_credentials
from cronsync.files import atomic, tree
from cronsync.repo import process

# GIT_ASKPASS disables core.askPass and SSH_ASKPASS too), no credential-manager UI.
# Each git also runs in its own session, so ssh has no terminal to prompt on. When
# the URL carries credentials, GIT_ASKPASS names our own non-interactive program.
NO_PROMPT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "SSH_ASKPASS_REQUIRE": "never",
    "GCM_INTERACTIVE": "never",
}

# Phrases in git's stderr that mean the local repository is damaged (not the remote).
_CORRUPTION_MARKERS = (
    "not a git repository",
    "bad object",
    "invalid object",
    "missing blob",
    "missing tree",
    "missing commit",
    "missing object",
    "did not send all necessary objects",
    "does not point to a valid object",
    "corrupt",
    "unable to read",
    "bad packed",
    "packfile",
    "inflate",
    "index file",
    "bad config",
    "appears to be broken",
    "dubious ownership",
    "packed-refs",  # e.g. "unterminated line in .git/packed-refs"
    ".lock': file exists",  # a lock left by a git killed mid-write (we hold the sync lock)
)

# Phrases in git's stderr that mean a write failed for want of room.
_DISK_FULL_MARKERS = ("no space left on device", "disk quota exceeded")

# ... or for a reason git does not name, writing a file of the checkout. (Not "write
# error" nor "unable to write ... packet": those are the connection to the remote.)
_WRITE_FAILURE_MARKERS = (
    *_DISK_FULL_MARKERS,
    "unable to write file",
    "unable to write new index file",
    "unable to write loose object",
    "unable to write sha1",
    "read-only file system",
)

# (phrase in git's stderr, reason we report), first match wins.
_KNOWN_REASONS = (
    ("did not complete in", "timed out"),
    ("couldn't find remote ref", "branch not found"),
    ("remote branch", "branch not found"),
    ("does not appear to be a git repository", "repository not found"),
    ("does not exist", "repository not found"),
    ("repository not found", "repository not found"),
    ("' not found", "repository not found"),  # fatal: repository 'https://…/' not found
    ("authentication failed", "authentication failed"),
    ("could not read username", "authentication failed (no credentials)"),
    ("could not read password", "authentication failed (no credentials)"),
    ("permission denied (publickey", "authentication failed (ssh key refused)"),
    ("host key verification failed", "ssh host key not trusted"),
)

_BOILERPLATE = (
    "could not read from remote repository",
    "please make sure you have the correct access rights",
    "and the repository exists",
)


ASKPASS_NAME = ".askpass"
"""File name of the askpass program, written next to the checkout."""

# Answers git's "Username for '...': " and "Password for '...': " prompts from the
# environment of the git process that runs it; holds no secret itself.
_ASKPASS_SCRIPT = b"""#!/bin/sh
# cronsync: answers git's credential prompts from the environment (no secret here)
case "$1" in
Username*) printf '%s\\n' "$CRONSYNC_GIT_USERNAME" ;;
*) printf '%s\\n' "$CRONSYNC_GIT_PASSWORD" ;;
esac
"""


@dataclass(frozen=True)
class Remote:
    """How git reaches the remote.

    Attributes:
        url: the URL git is given and stores: the configured one without user-info.
        shown: the configured URL with its credentials masked, for messages.
        options: git options that go before a network subcommand.
        env: environment of a network git (the credentials; empty without any).
    """

    url: str
    shown: str
    options: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


class GitFailed(Exception):
    """A git command exited non-zero (translated before leaving the git modules)."""

    def __init__(self, args: tuple[str, ...], status: int, stderr: str) -> None:
        # the subcommand: the first word that is neither an option nor a -c value
        command = next((arg for arg in args if not arg.startswith("-") and "=" not in arg), "")
        super().__init__(f"git {command} failed ({status})")
        self.status = status
        self.stderr = stderr


def git_program() -> str:
    """The git program to run (GitPython's choice: ``$GIT_PYTHON_GIT_EXECUTABLE`` or git)."""
    return str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git")


def git_environment(env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """This process's environment for git: English messages (the phrases above are
    English), no prompts, then ``env``."""
    return {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **NO_PROMPT_ENV, **(env or {})}


def run_git(
    cwd: Path, *args: str, timeout: Optional[float] = None, env: Optional[dict[str, str]] = None
) -> str:
    """Run ``git ARGS`` in ``cwd`` without prompting; return its stdout (stripped).

    Args:
        cwd: where git runs.
        args: git's arguments.
        timeout: seconds before git (and its helpers) is ended; None for no limit.
        env: variables added to git's environment (:func:`git_environment`).

    Raises:
        GitFailed: git exited non-zero, could not be started, or was ended after
            ``timeout`` seconds (its stderr then says "did not complete in").
        StoppedError: cronsync is shutting down (git was stopped, or not started).
    """
    argv = [git_program(), *args]
    try:
        done = process.run_capture(argv, timeout=timeout, cwd=cwd, env=git_environment(env))
    except subprocess.TimeoutExpired as exc:
        message = f"fatal: git did not complete in {timeout:g} s"
        raise GitFailed(args, -1, message) from exc
    except OSError as exc:
        raise GitFailed(args, 127, f"fatal: cannot run git: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise GitFailed(args, done.returncode, done.stderr)
    return done.stdout.strip()


def in_checkout(checkout: Path) -> dict[str, str]:
    """Environment pinning git to ``checkout`` (never a repository above it)."""
    return {"GIT_DIR": str(checkout / ".git"), "GIT_WORK_TREE": str(checkout)}


def checkout_git(checkout: Path, *args: str, timeout: Optional[float] = None) -> str:
    """Run git inside ``checkout``; see :func:`run_git`."""
    return run_git(checkout, *args, timeout=timeout, env=in_checkout(checkout))


def remote_git(remote: Remote, checkout: Path, *args: str, timeout: float) -> str:
    """Run a git command that talks to ``remote`` inside ``checkout``; see :func:`run_git`."""
    env = {**in_checkout(checkout), **remote.env}
    return run_git(checkout, *remote.options, *args, timeout=timeout, env=env)


def _meaningful_lines(stderr: str) -> list[str]:
    """Git's stderr without hints, warnings, blank lines and the access boilerplate."""
    lines = []
    for raw in stderr.splitlines():
        line = raw.strip()
        lowered = line.lower()
        if not line or lowered.startswith(("hint:", "warning:")):
            continue
        if any(phrase in lowered for phrase in _BOILERPLATE):
            continue
        lines.append(line)
    return lines


def failure_reason(stderr: str, timeout: Optional[float] = None) -> str:
    """Turn git's stderr into a short, credential-free reason for a message.

    A line saying the disk is full wins, then one saying a write failed (git often
    ends with a vaguer one, such as "unpack-objects failed"); then a known phrase; then
    git's last ``fatal:`` or ``error:`` line; then its last line. ``timeout`` is the
    limit git ran under, named when it was exceeded.
    """
    lines = _meaningful_lines(stderr)
    lowered = "\n".join(lines).lower()
    full = [line for line in lines if _has_marker(line, _DISK_FULL_MARKERS)]
    failed = full or [line for line in lines if _has_marker(line, _WRITE_FAILURE_MARKERS)]
    for phrase, reason in _KNOWN_REASONS:
        if phrase in lowered and not failed:
            return f"{reason} after {timeout:g} s" if reason == "timed out" and timeout else reason
    if not lines:
        return "git failed without a message"
    errors = [line for line in lines if re.match(r"(fatal|error): ", line)]
    chosen = (failed or errors or lines)[-1]
    return redact_url(re.sub(r"^(fatal|error): ", "", chosen))[:300]


def _local_lines(stderr: str) -> list[str]:
    """git's stderr lines, lower-cased, without those from the remote side."""
    return [line.lower() for line in stderr.splitlines() if not line.startswith("remote:")]


def _has_marker(line: str, markers: tuple[str, ...]) -> bool:
    lowered = line.lower()
    return any(marker in lowered for marker in markers)


def is_corruption(stderr: str) -> bool:
    """Whether git's stderr says the local repository is damaged (and no write failed:
    see :func:`is_write_failure`).

    Lines from the remote side (``remote: ...``) do not count.
    """
    if is_write_failure(stderr):
        return False
    return any(_has_marker(line, _CORRUPTION_MARKERS) for line in _local_lines(stderr))


def is_write_failure(stderr: str) -> bool:
    """Whether git's stderr says a write on this host failed (a full disk, mostly).

    Such a checkout is not damaged: cloning it afresh would need the room that is
    missing. Lines from the remote side do not count.
    """
    return any(_has_marker(line, _WRITE_FAILURE_MARKERS) for line in _local_lines(stderr))


def write_failure(what: str, exc: GitFailed, timeout: Optional[float] = None) -> InstallError:
    """The error (exit code 4, like any failed install) for a git command that could not
    write on this host: ``what`` failed, then git's reason."""
    return InstallError(f"{what}: {failure_reason(exc.stderr, timeout)}")


def prepare_remote(url: str, checkout: Path) -> Remote:
    """Take the credentials out of ``url`` and arrange for git to get them another way.

    With credentials, the askpass program is (re)written next to ``checkout`` and
    the returned environment names it and carries the user name and password; the
    ``-c credential.helper=`` option keeps any configured helper from storing them.

    Raises:
        SourceError: the askpass program cannot be written.
    """
    split = split_credentials(url)
    shown = redact_url(url)
    if not split.has_credentials:
        return Remote(split.url, shown)
    env = {
        "GIT_ASKPASS": str(_install_askpass(checkout.parent)),
        "CRONSYNC_GIT_USERNAME": split.username or "",
        "CRONSYNC_GIT_PASSWORD": split.password or "",
    }
    return Remote(split.url, shown, ("-c", "credential.helper="), env)


def _install_askpass(directory: Path) -> Path:
    """Make sure ``directory``/.askpass is our askpass script (mode 0700); return its path.

    Raises:
        SourceError: the directory or the script cannot be created.
    """
    path = Path(os.path.abspath(directory / ASKPASS_NAME))  # git runs it from elsewhere
    if _is_our_askpass(path):
        return path
    try:
        directory.mkdir(parents=True, exist_ok=True)
        atomic.atomic_write(path, _ASKPASS_SCRIPT, mode=0o700)
    except OSError as exc:
        raise SourceError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    except CronsyncError as exc:
        raise SourceError(f"cannot write the git askpass program: {exc}") from exc
    return path


def _is_our_askpass(path: Path) -> bool:
    """Whether ``path`` is a regular file of ours, mode 0700, holding our script."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        return stat.S_IMODE(info.st_mode) == 0o700 and path.read_bytes() == _ASKPASS_SCRIPT
    except OSError:
        return False


def discard_tree(path: Path) -> None:
    """Best-effort removal of a temp tree while another error is being raised."""
    with contextlib.suppress(CronsyncError):
        tree.remove_tree(path)


def check_rev(checkout: Path, rev: str) -> None:
    """Refuse a revision git would read as an option.

    Raises:
        SourceError: ``rev`` is empty, starts with ``-`` or holds whitespace.
    """
    if not rev or rev.startswith("-") or any(ch.isspace() for ch in rev):
        raise SourceError(f"invalid revision {rev!r} for {checkout}")
