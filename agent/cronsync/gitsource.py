"""The git side of a sync: keep a local checkout of one branch, export commits.

This is the only module that imports GitPython, and every git command runs through
:func:`_git` (``git archive`` streams through :func:`_archive_into`). Git never prompts
a human (no terminal, its own session), network operations are killed after a
timeout, and every failure becomes a one-line :class:`~cronsync.errors.SourceError`
whose URLs have their credentials masked.

Credentials in an ``https://user:secret@host/...`` URL never reach git's command
line (``ps`` shows it to every local user) nor ``.git/config``: git gets the URL
without them, and asks our askpass program (a fixed script next to the checkout)
for them, which answers from the environment of that one git process.

A checkout that git cannot use (missing or garbage ``HEAD``, missing objects, a
corrupt index, ...) is removed and cloned afresh; a remote that cannot be reached is
reported and leaves the checkout alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import git

from cronsync import fsutil
from cronsync.errors import CronsyncError, SourceError
from cronsync.tarsafe import extract_tar, make_dir
from cronsync.urls import redact_url, split_credentials

DEFAULT_NETWORK_TIMEOUT = 120.0
"""Seconds a clone or fetch may take before git is killed."""

# Git must never wait for a human: no terminal prompt, no askpass program (an empty
# GIT_ASKPASS disables core.askPass and SSH_ASKPASS too), no credential-manager UI.
# Each git also runs in its own session, so ssh has no terminal to prompt on. When
# the URL carries credentials, GIT_ASKPASS names our own non-interactive program.
_NO_PROMPT_ENV = {
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


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_branch` found.

    Attributes:
        commit: full sha of the branch tip, now checked out.
        recloned: the checkout was missing or broken and was cloned afresh.
        previous: the checkout's HEAD before this fetch (None if it was unknown,
            e.g. on a first clone).
    """

    commit: str
    recloned: bool
    previous: Optional[str]


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
class _Remote:
    """How git reaches the remote (internal).

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


class _GitFailed(Exception):
    """A git command exited non-zero (internal; translated before leaving the module)."""

    def __init__(self, args: tuple[str, ...], status: int, stderr: str) -> None:
        # the subcommand: the first word that is neither an option nor a -c value
        command = next((arg for arg in args if not arg.startswith("-") and "=" not in arg), "")
        super().__init__(f"git {command} failed ({status})")
        self.status = status
        self.stderr = stderr


class _BrokenCheckout(Exception):
    """The checkout is unusable and should be cloned afresh (internal)."""


def _git(
    cwd: Path, *args: str, timeout: Optional[float] = None, env: Optional[dict[str, str]] = None
) -> str:
    """Run ``git ARGS`` in ``cwd`` without prompting; return its stdout (stripped).

    Raises:
        _GitFailed: git exited non-zero or was killed after ``timeout`` seconds.
    """
    runner = git.Git(str(cwd))
    status, out, err = runner.execute(
        [str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), *args],
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=timeout,
        env={**_NO_PROMPT_ENV, **(env or {})},
        start_new_session=True,
    )
    if status != 0:
        raise _GitFailed(args, status, err)
    return out.strip()


def _in_checkout(checkout: Path) -> dict[str, str]:
    """Environment pinning git to ``checkout`` (never a repository above it)."""
    return {"GIT_DIR": str(checkout / ".git"), "GIT_WORK_TREE": str(checkout)}


def _checkout_git(checkout: Path, *args: str, timeout: Optional[float] = None) -> str:
    """Run git inside ``checkout``; see :func:`_git`."""
    return _git(checkout, *args, timeout=timeout, env=_in_checkout(checkout))


def _remote_git(remote: _Remote, checkout: Path, *args: str, timeout: float) -> str:
    """Run a git command that talks to ``remote`` inside ``checkout``; see :func:`_git`."""
    env = {**_in_checkout(checkout), **remote.env}
    return _git(checkout, *remote.options, *args, timeout=timeout, env=env)


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


def _reason(stderr: str, timeout: Optional[float] = None) -> str:
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


def _is_corruption(stderr: str) -> bool:
    """Whether git's stderr says the local repository is damaged.

    Lines from the remote side (``remote: ...``) do not count.
    """
    local = [line.lower() for line in stderr.splitlines() if not line.startswith("remote:")]
    return any(marker in line for line in local for marker in _CORRUPTION_MARKERS)


def _check_inputs(url: str, branch: str) -> None:
    """Refuse a URL or branch name git would misread as an option or a refspec.

    Also refuses credentials git could not be given: a control character (a
    percent-encoded newline, say) in the user name or password.

    Raises:
        SourceError: naming the bad value (its credentials masked).
    """
    remote = split_credentials(url)
    credentials = f"{remote.username or ''}{remote.password or ''}"
    if (
        not url
        or url.startswith("-")
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in url + credentials)
    ):
        raise SourceError(f"invalid repository url {redact_url(url)!r}")
    bad = set(" ~^:?*[\\") | {chr(c) for c in range(32)} | {chr(127)}
    if (
        not branch
        or branch.startswith(("-", "/"))
        or branch.endswith(("/", ".lock", "."))
        or ".." in branch
        or "@{" in branch
        or any(ch in bad for ch in branch)
    ):
        raise SourceError(f"invalid branch name {branch!r}")


def fetch_branch(
    url: str, branch: str, checkout: Path, *, timeout: float = DEFAULT_NETWORK_TIMEOUT
) -> FetchResult:
    """Bring ``checkout`` to the tip of ``branch`` at ``url``, cloning if needed.

    A missing checkout is cloned (into a temp sibling, then renamed into place). An
    existing one gets origin's URL set to ``url`` (without credentials), one forced
    fetch of the branch (force-pushes are fine) and, only if something changed,
    ``reset --hard`` and ``clean -ffdx``. A checkout git cannot use is removed and
    cloned afresh.

    Args:
        url: the remote (path, ``file://``, ``https://``, ssh...). Credentials in an
            http(s) URL (``https://user:token@host/...``, percent-encoded) reach git
            only through the environment of its network commands, via the askpass
            program ``.askpass`` written next to ``checkout``; they never appear in
            git's argv, in the checkout or in messages.
        branch: the branch to follow.
        checkout: the local working copy (owned by the agent).
        timeout: seconds a clone or fetch may take before git is killed.

    Returns:
        the new tip, whether a clone happened, and the previous HEAD.

    Raises:
        SourceError: the remote is unreachable, gone, refuses us, lacks the branch,
            the checkout cannot be replaced, or the askpass program cannot be written.
    """
    _check_inputs(url, branch)
    remote = _prepare_remote(url, checkout)
    if not os.path.lexists(checkout):
        return FetchResult(_clone(remote, branch, checkout, timeout), True, None)
    try:
        _open_repo(checkout)
        previous, commit = _update(remote, branch, checkout, timeout)
    except _BrokenCheckout:
        last_head = _read_head(checkout)
        _remove_broken(checkout)
        return FetchResult(_clone(remote, branch, checkout, timeout), True, last_head)
    return FetchResult(commit, False, previous)


def _prepare_remote(url: str, checkout: Path) -> _Remote:
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
        return _Remote(split.url, shown)
    env = {
        "GIT_ASKPASS": str(_install_askpass(checkout.parent)),
        "CRONSYNC_GIT_USERNAME": split.username or "",
        "CRONSYNC_GIT_PASSWORD": split.password or "",
    }
    return _Remote(split.url, shown, ("-c", "credential.helper="), env)


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
        fsutil.atomic_write(path, _ASKPASS_SCRIPT, mode=0o700)
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


def _open_repo(checkout: Path) -> None:
    """Check that ``checkout`` is a git working copy.

    Raises:
        _BrokenCheckout: GitPython cannot open it.
    """
    try:
        git.Repo(checkout).close()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise _BrokenCheckout(str(exc)) from exc


def _read_head(checkout: Path) -> Optional[str]:
    """Return the checkout's HEAD sha, or None when git cannot tell."""
    try:
        return _checkout_git(checkout, "rev-parse", "--verify", "--quiet", "HEAD") or None
    except _GitFailed:
        return None


def _update(remote: _Remote, branch: str, checkout: Path, timeout: float) -> tuple[str, str]:
    """Bring the existing ``checkout`` to the remote tip of ``branch``.

    Asks the remote for the tip first (as cheap as a no-op fetch) and fetches only
    when it differs from what we have; resets and cleans only when HEAD or the work
    tree differ from the tip.

    Returns:
        (HEAD before, the tip's sha).

    Raises:
        SourceError: the remote side failed.
        _BrokenCheckout: the local repository is damaged.
    """
    try:
        _set_origin(checkout, remote.url)
        remote_tip = _network(_remote_tip, remote, branch, checkout, timeout)
        head, tip = _local_tips(checkout, branch)
        if tip != remote_tip:
            _network(_fetch, remote, branch, checkout, timeout)
            tip = _checkout_git(checkout, "rev-parse", "--verify", _tracking_ref(branch))
        if head != tip:
            # Every object of the new tip's tree must be present: a missing blob would
            # otherwise only show up when the commit is exported. (Releases are
            # exported from the commit, not the work tree, so an unchanged tip needs
            # neither this nor a look at the work tree: the no-op cycle stays cheap.)
            _checkout_git(checkout, "rev-list", "--objects", "--no-walk", "--quiet", tip)
            _checkout_git(checkout, "reset", "--quiet", "--hard", tip)
            _checkout_git(checkout, "clean", "-ffdxq")
    except (_GitFailed, ValueError) as exc:
        raise _BrokenCheckout(str(exc)) from exc
    return head, tip


def _tracking_ref(branch: str) -> str:
    """Where the checkout keeps the fetched tip of ``branch``."""
    return f"refs/remotes/origin/{branch}"


def _local_tips(checkout: Path, branch: str) -> tuple[str, Optional[str]]:
    """Return (HEAD, fetched tip of ``branch`` or None if never fetched).

    Raises:
        _GitFailed: HEAD cannot be resolved.
    """
    try:
        head, tip = _checkout_git(checkout, "rev-parse", "HEAD", _tracking_ref(branch)).split()
    except _GitFailed:  # the branch was never fetched into this checkout
        return _checkout_git(checkout, "rev-parse", "--verify", "HEAD"), None
    return head, tip


def _network(
    operation: Callable[[_Remote, str, Path, float], str],
    remote: _Remote,
    branch: str,
    checkout: Path,
    timeout: float,
) -> str:
    """Run ``operation(remote, branch, checkout, timeout)`` on origin; return its result.

    Raises:
        _BrokenCheckout: git's error says the local repository is damaged.
        SourceError: any other failure (the remote's side), naming the URL redacted.
    """
    try:
        return operation(remote, branch, checkout, timeout)
    except _GitFailed as exc:
        if _is_corruption(exc.stderr):
            raise _BrokenCheckout(exc.stderr) from exc
        raise _fetch_error(remote, branch, _reason(exc.stderr, timeout)) from exc


def _remote_tip(remote: _Remote, branch: str, checkout: Path, timeout: float) -> str:
    """Ask origin for the sha of ``branch``.

    Raises:
        _GitFailed: git failed, or the branch does not exist ("couldn't find remote ref").
    """
    ref = f"refs/heads/{branch}"
    out = _remote_git(remote, checkout, "ls-remote", "origin", ref, timeout=timeout)
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    raise _GitFailed(("ls-remote",), 2, f"fatal: couldn't find remote ref {ref}")


def _fetch(remote: _Remote, branch: str, checkout: Path, timeout: float) -> str:
    """Force-fetch ``branch`` from origin into its tracking ref (force-pushes are fine).

    Raises:
        _GitFailed: the fetch failed.
    """
    refspec = f"+refs/heads/{branch}:{_tracking_ref(branch)}"
    return _remote_git(
        remote,
        checkout,
        "fetch",
        "--quiet",
        "--prune",
        "--no-tags",
        "origin",
        refspec,
        timeout=timeout,
    )


def _set_origin(checkout: Path, url: str) -> None:
    """Point remote ``origin`` of ``checkout`` at ``url`` unless it already is.

    ``url`` has no credentials, so this also rewrites an origin URL that still holds
    some (as clones made by older versions do).
    """
    try:
        current = _checkout_git(checkout, "config", "--get", "remote.origin.url")
    except _GitFailed as exc:
        if exc.status != 1:  # 1 means "not set"; anything else is a broken config
            raise
        current = ""
    if current != url:
        _checkout_git(checkout, "config", "remote.origin.url", url)


def _fetch_error(remote: _Remote, branch: str, reason: str) -> SourceError:
    """The SourceError for a failed clone or fetch of ``branch`` from ``remote``."""
    return SourceError(f"cannot fetch branch {branch!r} from {remote.shown}: {reason}")


def _remove_broken(checkout: Path) -> None:
    """Delete a broken checkout, but only if it looks like one of ours.

    Raises:
        SourceError: ``checkout`` is not a directory with a ``.git`` (nor an empty
            directory) — refusing to delete something that may not be ours — or it
            cannot be removed.
    """
    try:
        is_dir = checkout.is_dir() and not checkout.is_symlink()
        ours = is_dir and (os.path.lexists(checkout / ".git") or not any(checkout.iterdir()))
    except OSError:
        ours = False
    if not ours:
        raise SourceError(f"{checkout} exists but is not a git checkout; refusing to replace it")
    try:
        fsutil.remove_tree(checkout)
    except CronsyncError as exc:
        raise SourceError(f"cannot remove broken checkout: {exc}") from exc


def _clone(remote: _Remote, branch: str, checkout: Path, timeout: float) -> str:
    """Clone ``branch`` of ``remote`` into the absent ``checkout``; return the tip's sha.

    The clone is made in a temp sibling and renamed into place, so a half-done clone
    never looks like a checkout.

    Raises:
        SourceError: the clone failed (nothing is left behind).
    """
    tmp = fsutil.temp_sibling(checkout, "clone")
    try:
        checkout.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_clones(checkout)
        _git(
            checkout.parent,
            *remote.options,
            "clone",
            "--quiet",
            "--no-tags",
            "--single-branch",
            "--branch",
            branch,
            "--",
            remote.url,
            str(tmp),
            timeout=timeout,
            env=dict(remote.env),
        )
        tip = _cloned_tip(remote, branch, tmp)
        os.rename(tmp, checkout)
    except _GitFailed as exc:
        _discard_tree(tmp)
        raise _fetch_error(remote, branch, _reason(exc.stderr, timeout)) from exc
    except OSError as exc:
        _discard_tree(tmp)
        raise SourceError(f"cannot create checkout {checkout}: {exc.strerror or exc}") from exc
    except BaseException:
        _discard_tree(tmp)
        raise
    return tip


def _remove_stale_clones(checkout: Path) -> None:
    """Remove temp clones that an interrupted earlier clone of ``checkout`` left behind.

    Raises:
        SourceError: one cannot be removed.
    """
    # ".{name}.clone-{pid}-{random}" minus the pid and the random part
    prefix = fsutil.temp_sibling(checkout, "clone").name.rsplit("-", 2)[0] + "-"
    for name in os.listdir(checkout.parent):
        if not name.startswith(prefix):
            continue
        try:
            fsutil.remove_tree(checkout.parent / name)
        except CronsyncError as exc:
            raise SourceError(f"cannot remove an old temp clone: {exc}") from exc


def _cloned_tip(remote: _Remote, branch: str, clone: Path) -> str:
    """Return the sha of ``origin/{branch}`` in a fresh clone.

    Raises:
        SourceError: ``branch`` named a tag, not a branch (clone accepts both).
    """
    try:
        return _checkout_git(clone, "rev-parse", "--verify", f"refs/remotes/origin/{branch}")
    except _GitFailed as exc:
        raise _fetch_error(remote, branch, "branch not found") from exc


def _discard_tree(path: Path) -> None:
    """Best-effort removal of a temp tree while another error is being raised."""
    with contextlib.suppress(CronsyncError):
        fsutil.remove_tree(path)


def _check_rev(checkout: Path, rev: str) -> None:
    """Refuse a revision git would read as an option.

    Raises:
        SourceError: ``rev`` is empty, starts with ``-`` or holds whitespace.
    """
    if not rev or rev.startswith("-") or any(ch.isspace() for ch in rev):
        raise SourceError(f"invalid revision {rev!r} for {checkout}")


def is_ancestor(checkout: Path, older: str, newer: str) -> bool:
    """Whether ``older`` is an ancestor of (or equal to) ``newer`` in ``checkout``.

    A False answer for the previous and the new tip of a branch means a force-push.

    Args:
        checkout: a checkout made by :func:`fetch_branch`.
        older, newer: commits (shas or revisions).

    Returns:
        True if ``newer`` contains ``older``; False if not, or if either is unknown.

    Raises:
        SourceError: a revision looks like an option.
    """
    _check_rev(checkout, older)
    _check_rev(checkout, newer)
    try:
        _checkout_git(checkout, "merge-base", "--is-ancestor", older, newer)
    except _GitFailed:
        return False
    return True


def export_commit(checkout: Path, commit: str, dest: Path) -> None:
    """Write the tree of ``commit`` into the new directory ``dest``.

    Files get mode 0755 (executable in git) or 0644, directories 0755, whatever the
    umask; symlinks are kept as symlinks, not followed (validation decides whether
    they escape the tree).

    Args:
        checkout: a checkout made by :func:`fetch_branch` that has ``commit``.
        commit: the commit to export.
        dest: a path that must not exist yet; its parent must.

    Raises:
        SourceError: ``dest`` exists, the commit is unknown, git failed, or the
            archive holds an unsafe entry. A partial ``dest`` is removed.
    """
    _check_rev(checkout, commit)
    where = f"cannot export commit {commit[:12]} of {checkout} to {dest}"
    try:
        make_dir(dest)
    except OSError as exc:
        raise SourceError(f"{where}: {exc.strerror or exc}") from exc
    try:
        _pin_archive_attributes(checkout)
        _archive_into(checkout, commit, dest)
    except _GitFailed as exc:
        _discard_tree(dest)
        raise SourceError(f"{where}: {_reason(exc.stderr)}") from exc
    except (OSError, tarfile.TarError, CronsyncError) as exc:
        _discard_tree(dest)
        raise SourceError(f"{where}: {exc}") from exc
    except BaseException:
        _discard_tree(dest)
        raise


_EXACT_TREE_ATTRIBUTES = b"* -export-ignore -export-subst\n"


def _pin_archive_attributes(checkout: Path) -> None:
    """Make ``git archive`` export the tree exactly as committed.

    A repository's ``.gitattributes`` could otherwise drop files (``export-ignore``)
    or rewrite them (``export-subst``); ``.git/info/attributes`` overrides it.

    Raises:
        OSError, InstallError: the attributes file cannot be written.
    """
    path = checkout / ".git" / "info" / "attributes"
    with contextlib.suppress(OSError):
        if path.read_bytes() == _EXACT_TREE_ATTRIBUTES:
            return
    path.parent.mkdir(exist_ok=True)
    fsutil.atomic_write(path, _EXACT_TREE_ATTRIBUTES)


def _archive_into(checkout: Path, commit: str, dest: Path) -> None:
    """Stream ``git archive --format=tar COMMIT`` into :func:`extract_tar`.

    Raises:
        _GitFailed: git archive failed.
        SourceError: an unsafe archive member.
        OSError, tarfile.TarError: writing or reading failed.
    """
    cmd = [str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), "archive", "--format=tar"]
    runner = git.Git(str(checkout))
    handle = runner.execute(
        [*cmd, f"{commit}^{{commit}}"],
        as_process=True,
        env={**_NO_PROMPT_ENV, **_in_checkout(checkout)},
        start_new_session=True,
    )
    proc = handle.proc
    assert proc is not None and proc.stdout is not None and proc.stderr is not None
    try:
        extract_tar(proc.stdout, dest)
        while proc.stdout.read(65536):  # drain the padding after the end marker
            pass
        stderr = proc.stderr.read().decode("utf-8", "replace")
        status = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if status != 0:
        raise _GitFailed(("archive",), status, stderr)
