"""Running git for cronsync: the one git seam, its error translation, credentials.

Every git command runs through :func:`run_git` (``git archive`` streams through
:func:`cronsync.repo.gitexport.export_commit`'s own process). Git never prompts a human
(no terminal, its own session), network operations are killed after a timeout, and
:func:`failure_reason` turns git's stderr into a short reason whose URLs have their
credentials masked.

Credentials in an ``https://user:secret@host/...`` URL never reach git's command
line (``ps`` shows it to every local user) nor ``.git/config``: git gets the URL
without them, and asks our askpass program (a fixed script next to the checkout)
for them, which answers from the environment of that one git process
(:func:`prepare_remote`).

With :mod:`cronsync.repo.gitsource` and :mod:`cronsync.repo.gitexport`, the only modules that
import GitPython; :class:`GitFailed` never leaves them.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import git

from cronsync.core.errors import CronsyncError, SourceError
from cronsync.core.urls import redact_url, split_credentials
from cronsync.files import atomic, tree

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


def run_git(
    cwd: Path, *args: str, timeout: Optional[float] = None, env: Optional[dict[str, str]] = None
) -> str:
    """Run ``git ARGS`` in ``cwd`` without prompting; return its stdout (stripped).

    Raises:
        GitFailed: git exited non-zero or was killed after ``timeout`` seconds.
    """
    runner = git.Git(str(cwd))
    status, out, err = runner.execute(
        [str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), *args],
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=timeout,
        env={**NO_PROMPT_ENV, **(env or {})},
        start_new_session=True,
    )
    if status != 0:
        raise GitFailed(args, status, err)
    return out.strip()


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

    ``timeout`` is the limit git ran under, named when it was exceeded.
    """
    lines = _meaningful_lines(stderr)
    lowered = "\n".join(lines).lower()
    for phrase, reason in _KNOWN_REASONS:
        if phrase in lowered:
            return f"{reason} after {timeout:g} s" if reason == "timed out" and timeout else reason
    if not lines:
        return "git failed without a message"
    last = re.sub(r"^(fatal|error): ", "", lines[-1])
    return redact_url(last)[:300]


def is_corruption(stderr: str) -> bool:
    """Whether git's stderr says the local repository is damaged.

    Lines from the remote side (``remote: ...``) do not count.
    """
    local = [line.lower() for line in stderr.splitlines() if not line.startswith("remote:")]
    return any(marker in line for line in local for marker in _CORRUPTION_MARKERS)


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
