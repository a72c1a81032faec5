"""The fetch side of a sync: keep a local checkout of one branch.

Clones, fetches and re-clones run git through :mod:`cronsync.repo.gitrun` (never
prompting, killed after a timeout, credentials only in the environment of the
network commands); every failure becomes a one-line
:class:`~cronsync.core.errors.SourceError` whose URLs have their credentials masked.
Exporting a commit of the checkout is :mod:`cronsync.repo.gitexport`'s.

A checkout that git cannot use (missing or garbage ``HEAD``, missing objects, a
corrupt index or ``packed-refs``, a lock left by a killed git, no ``.git`` at all, ...)
is removed and cloned afresh — but only a directory cronsync made: one with a ``.git``,
an empty one, or the very directory it cloned, which the marker file
``.{name}.cronsync-clone`` next to it names (device and inode). A remote that cannot be
reached is reported and leaves the checkout alone; so does a full disk (an
:class:`~cronsync.core.errors.InstallError`: a clone would need the room that is missing).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import git

from cronsync.core.errors import CronsyncError, InstallError, SourceError
from cronsync.core.urls import redact_url, split_credentials
from cronsync.files import atomic, tree
from cronsync.repo import gitrun
from cronsync.repo.checkoutmark import mark_as_ours, remove_broken_checkout
from cronsync.repo.gitrun import (
    GitFailed,
    Remote,
    check_rev,
    checkout_git,
    discard_tree,
    failure_reason,
    is_corruption,
    is_write_failure,
    prepare_remote,
    remote_git,
    write_failure,
)

DEFAULT_NETWORK_TIMEOUT = 120.0
"""Seconds a clone or fetch may take before git is killed."""


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


class _BrokenCheckout(Exception):
    """The checkout is unusable and should be cloned afresh (internal)."""


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
    if remote.unusable:
        raise SourceError(f"invalid repository url {redact_url(url)!r}: {remote.unusable}")
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
            http(s) URL (``https://user:token@host/...``, percent-encoded, or a token
            in its query string, ``?access_token=...``) reach git only through the
            environment of its network commands, via the askpass program ``.askpass``
            written next to ``checkout``; they never appear in git's argv, in the
            checkout or in messages.
        branch: the branch to follow.
        checkout: the local working copy (owned by the agent).
        timeout: seconds a clone or fetch may take before git is killed.

    Returns:
        the new tip, whether a clone happened, and the previous HEAD.

    Raises:
        SourceError: the remote is unreachable, gone, refuses us, lacks the branch,
            the checkout cannot be replaced, or the askpass program cannot be written.
        InstallError: git could not write on this host (a full disk); the checkout is
            kept as it is.
        StoppedError: cronsync is shutting down (git was stopped).
    """
    _check_inputs(url, branch)
    remote = prepare_remote(url, checkout)
    if not os.path.lexists(checkout):
        return FetchResult(_clone(remote, branch, checkout, timeout), True, None)
    try:
        _open_repo(checkout)
        previous, commit = _update(remote, branch, checkout, timeout)
        mark_as_ours(checkout, checkout)
    except _BrokenCheckout:
        last_head = _read_head(checkout)
        remove_broken_checkout(checkout)
        return FetchResult(_clone(remote, branch, checkout, timeout), True, last_head)
    except InstallError:
        _give_room_back(checkout)
        raise
    return FetchResult(commit, False, previous)


def _give_room_back(checkout: Path) -> None:
    """After a failed write (a full disk), remove what git left half-written: temp
    object files (``prune``; nothing else runs git here, the sync lock sees to it) and
    untracked files of an interrupted ``reset`` (``clean``). Best effort."""
    for args in (("prune", "--expire=now"), ("clean", "-ffdxq")):
        with contextlib.suppress(GitFailed):
            checkout_git(checkout, *args)


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
        return checkout_git(checkout, "rev-parse", "--verify", "--quiet", "HEAD") or None
    except GitFailed:
        return None


def _update(remote: Remote, branch: str, checkout: Path, timeout: float) -> tuple[str, str]:
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
            tip = checkout_git(checkout, "rev-parse", "--verify", _tracking_ref(branch))
        if head != tip:
            # Every object of the new tip's tree must be present: a missing blob would
            # otherwise only show up when the commit is exported. (Releases are
            # exported from the commit, not the work tree, so an unchanged tip needs
            # neither this nor a look at the work tree: the no-op cycle stays cheap.)
            checkout_git(checkout, "rev-list", "--objects", "--no-walk", "--quiet", tip)
            checkout_git(checkout, "reset", "--quiet", "--hard", tip)
            checkout_git(checkout, "clean", "-ffdxq")
    except GitFailed as exc:
        if is_write_failure(exc.stderr):  # a full disk: the checkout is not to blame
            raise write_failure(f"cannot update the checkout {checkout}", exc) from exc
        raise _BrokenCheckout(str(exc)) from exc
    except ValueError as exc:
        raise _BrokenCheckout(str(exc)) from exc
    return head, tip


def _tracking_ref(branch: str) -> str:
    """Where the checkout keeps the fetched tip of ``branch``."""
    return f"refs/remotes/origin/{branch}"


def _local_tips(checkout: Path, branch: str) -> tuple[str, Optional[str]]:
    """Return (HEAD, fetched tip of ``branch`` or None if never fetched).

    Raises:
        GitFailed: HEAD cannot be resolved.
    """
    try:
        head, tip = checkout_git(checkout, "rev-parse", "HEAD", _tracking_ref(branch)).split()
    except GitFailed:  # the branch was never fetched into this checkout
        return checkout_git(checkout, "rev-parse", "--verify", "HEAD"), None
    return head, tip


def _network(
    operation: Callable[[Remote, str, Path, float], str],
    remote: Remote,
    branch: str,
    checkout: Path,
    timeout: float,
) -> str:
    """Run ``operation(remote, branch, checkout, timeout)`` on origin; return its result.

    Raises:
        _BrokenCheckout: git's error says the local repository is damaged.
        InstallError: git could not write on this host (a full disk).
        SourceError: any other failure (the remote's side), naming the URL redacted.
    """
    try:
        return operation(remote, branch, checkout, timeout)
    except GitFailed as exc:
        if is_write_failure(exc.stderr):
            raise write_failure(_fetch_what(remote, branch), exc, timeout) from exc
        if is_corruption(exc.stderr):
            raise _BrokenCheckout(exc.stderr) from exc
        raise _fetch_error(remote, branch, failure_reason(exc.stderr, timeout)) from exc


def _remote_tip(remote: Remote, branch: str, checkout: Path, timeout: float) -> str:
    """Ask origin for the sha of ``branch``.

    Raises:
        GitFailed: git failed, or the branch does not exist ("couldn't find remote ref").
    """
    ref = f"refs/heads/{branch}"
    out = remote_git(remote, checkout, "ls-remote", "origin", ref, timeout=timeout)
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    raise GitFailed(("ls-remote",), 2, f"fatal: couldn't find remote ref {ref}")


def _fetch(remote: Remote, branch: str, checkout: Path, timeout: float) -> str:
    """Force-fetch ``branch`` from origin into its tracking ref (force-pushes are fine).

    Raises:
        GitFailed: the fetch failed.
    """
    refspec = f"+refs/heads/{branch}:{_tracking_ref(branch)}"
    return remote_git(
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
    some (as clones made by older versions do). The old URL also sits in the reflog
    ("clone: from URL", where git hides a user:password but not a query's token) and in
    ``FETCH_HEAD``: both are emptied with it (the next fetch writes ``FETCH_HEAD`` anew).
    """
    try:
        current = checkout_git(checkout, "config", "--get", "remote.origin.url")
    except GitFailed as exc:
        if exc.status != 1:  # 1 means "not set"; anything else is a broken config
            raise
        current = ""
    if current != url:
        checkout_git(checkout, "config", "remote.origin.url", url)
        checkout_git(checkout, "reflog", "expire", "--expire=now", "--all")
        Path(checkout, ".git", "FETCH_HEAD").unlink(missing_ok=True)


def _fetch_what(remote: Remote, branch: str) -> str:
    """What failed, for a clone or fetch of ``branch`` from ``remote``."""
    return f"cannot fetch branch {branch!r} from {remote.shown}"


def _fetch_error(remote: Remote, branch: str, reason: str) -> SourceError:
    """The SourceError for a failed clone or fetch of ``branch`` from ``remote``."""
    return SourceError(f"{_fetch_what(remote, branch)}: {reason}")


def _clone(remote: Remote, branch: str, checkout: Path, timeout: float) -> str:
    """Clone ``branch`` of ``remote`` into the absent ``checkout``; return the tip's sha.

    The clone is made in a temp sibling and renamed into place, so a half-done clone
    never looks like a checkout.

    The marker (:func:`cronsync.repo.checkoutmark.marker_path`) names the new
    directory before it is renamed.

    Raises:
        SourceError: the clone failed (nothing is left behind).
        InstallError: git could not write on this host (a full disk), or the marker
            cannot be written (nothing is left behind).
    """
    tmp = atomic.temp_sibling(checkout, "clone")
    try:
        checkout.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_clones(checkout)
        gitrun.run_git(
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
        mark_as_ours(tmp, checkout)
        os.rename(tmp, checkout)
    except GitFailed as exc:
        discard_tree(tmp)
        if is_write_failure(exc.stderr):
            raise write_failure(_fetch_what(remote, branch), exc, timeout) from exc
        raise _fetch_error(remote, branch, failure_reason(exc.stderr, timeout)) from exc
    except OSError as exc:
        discard_tree(tmp)
        raise SourceError(f"cannot create checkout {checkout}: {exc.strerror or exc}") from exc
    except BaseException:
        discard_tree(tmp)
        raise
    return tip


def _remove_stale_clones(checkout: Path) -> None:
    """Remove temp clones that an interrupted earlier clone of ``checkout`` left behind.

    Raises:
        SourceError: one cannot be removed.
    """
    # ".{name}.clone-{pid}-{random}" minus the pid and the random part
    prefix = atomic.temp_sibling(checkout, "clone").name.rsplit("-", 2)[0] + "-"
    for name in os.listdir(checkout.parent):
        if not name.startswith(prefix):
            continue
        try:
            tree.remove_tree(checkout.parent / name)
        except CronsyncError as exc:
            raise SourceError(f"cannot remove an old temp clone: {exc}") from exc


def _cloned_tip(remote: Remote, branch: str, clone: Path) -> str:
    """Return the sha of ``origin/{branch}`` in a fresh clone.

    Raises:
        SourceError: ``branch`` named a tag, not a branch (clone accepts both).
    """
    try:
        return checkout_git(clone, "rev-parse", "--verify", f"refs/remotes/origin/{branch}")
    except GitFailed as exc:
        raise _fetch_error(remote, branch, "branch not found") from exc


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
    check_rev(checkout, older)
    check_rev(checkout, newer)
    try:
        checkout_git(checkout, "merge-base", "--is-ancestor", older, newer)
    except GitFailed:
        return False
    return True
