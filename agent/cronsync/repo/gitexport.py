"""Exporting a commit of the checkout as a release tree (``git archive``).

The archive is pinned to the tree exactly as committed (no ``export-ignore`` nor
``export-subst`` from the repository's ``.gitattributes``) and streamed through
:func:`cronsync.repo.tarsafe.extract_tar`, which refuses unsafe entries. Every failure
becomes a one-line :class:`~cronsync.core.errors.SourceError`.
"""

from __future__ import annotations

import contextlib
import tarfile
from pathlib import Path

import git

from cronsync.core.errors import CronsyncError, SourceError
from cronsync.files import atomic
from cronsync.repo.gitrun import (
    NO_PROMPT_ENV,
    GitFailed,
    check_rev,
    discard_tree,
    failure_reason,
    in_checkout,
)
from cronsync.repo.tarsafe import extract_tar, make_dir


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
    check_rev(checkout, commit)
    where = f"cannot export commit {commit[:12]} of {checkout} to {dest}"
    try:
        make_dir(dest)
    except OSError as exc:
        raise SourceError(f"{where}: {exc.strerror or exc}") from exc
    try:
        _pin_archive_attributes(checkout)
        _archive_into(checkout, commit, dest)
    except GitFailed as exc:
        discard_tree(dest)
        raise SourceError(f"{where}: {failure_reason(exc.stderr)}") from exc
    except (OSError, tarfile.TarError, CronsyncError) as exc:
        discard_tree(dest)
        raise SourceError(f"{where}: {exc}") from exc
    except BaseException:
        discard_tree(dest)
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
    atomic.atomic_write(path, _EXACT_TREE_ATTRIBUTES)


def _archive_into(checkout: Path, commit: str, dest: Path) -> None:
    """Stream ``git archive --format=tar COMMIT`` into :func:`extract_tar`.

    Raises:
        GitFailed: git archive failed.
        SourceError: an unsafe archive member.
        OSError, tarfile.TarError: writing or reading failed.
    """
    cmd = [str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), "archive", "--format=tar"]
    runner = git.Git(str(checkout))
    handle = runner.execute(
        [*cmd, f"{commit}^{{commit}}"],
        as_process=True,
        env={**NO_PROMPT_ENV, **in_checkout(checkout)},
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
        raise GitFailed(("archive",), status, stderr)
