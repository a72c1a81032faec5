"""Exporting a commit of the checkout as a release tree (``git archive``).

The archive is pinned to the tree exactly as committed (no ``export-ignore`` nor
``export-subst`` from the repository's ``.gitattributes``) and streamed through
:func:`cronsync.repo.tarsafe.extract_tar`, which refuses unsafe entries. Every failure
becomes a one-line error: :class:`DamagedCheckoutError` when git cannot read the
commit's objects (clone afresh and export again), :class:`~cronsync.core.errors.InstallError`
when writing the tree fails (a full disk: exit code 4, the checkout is fine), a
:class:`~cronsync.core.errors.SourceError` otherwise.
"""

from __future__ import annotations

import contextlib
import tarfile
from pathlib import Path
from typing import Optional

from cronsync.core.errors import CronsyncError, InstallError, SourceError
from cronsync.files import atomic
from cronsync.repo import process
from cronsync.repo.gitrun import (
    GitFailed,
    check_rev,
    checkout_git,
    discard_tree,
    failure_reason,
    git_environment,
    git_program,
    in_checkout,
    is_corruption,
    is_write_failure,
)
from cronsync.repo.tarsafe import extract_tar, make_dir


class DamagedCheckoutError(SourceError):
    """git cannot read the objects of the commit to export: the checkout is damaged."""


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
        DamagedCheckoutError: git cannot read the commit's objects.
        InstallError: ``dest`` or a file below it cannot be written (a full disk...),
            naming the system's reason.
        SourceError: ``dest`` exists, the commit is unknown, git failed otherwise, or
            the archive holds an unsafe entry.
        StoppedError: cronsync is shutting down.
        A partial ``dest`` is removed in every case.
    """
    check_rev(checkout, commit)
    where = f"cannot export commit {commit[:12]} of {checkout} to {dest}"
    try:
        make_dir(dest)
    except FileExistsError as exc:
        raise SourceError(f"{where}: {exc.strerror}") from exc
    except OSError as exc:
        raise InstallError(f"{where}: {exc.strerror or exc}") from exc
    try:
        _pin_archive_attributes(checkout)
        _archive_into(checkout, commit, dest)
    except BaseException as exc:
        discard_tree(dest)
        raise _export_error(where, exc) from exc


def _export_error(where: str, exc: BaseException) -> BaseException:
    """The error :func:`export_commit` raises for ``exc`` (``exc`` itself if it is not
    one of the export's)."""
    if isinstance(exc, GitFailed):
        if is_write_failure(exc.stderr):
            return InstallError(f"{where}: {failure_reason(exc.stderr)}")
        if is_corruption(exc.stderr):
            return DamagedCheckoutError(f"{where}: {failure_reason(exc.stderr)}")
        return SourceError(f"{where}: {failure_reason(exc.stderr)}")
    if isinstance(exc, OSError):
        return InstallError(f"{where}: {exc.strerror or exc}")
    if isinstance(exc, InstallError):  # the attributes file could not be written
        return InstallError(f"{where}: {exc}")
    if isinstance(exc, process.StoppedError) or not isinstance(
        exc, (tarfile.TarError, CronsyncError)
    ):
        return exc
    return SourceError(f"{where}: {exc}")


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
        GitFailed: git archive failed (also when the stream broke because it did).
        SourceError: an unsafe archive member.
        OSError, tarfile.TarError: writing or reading failed.
        StoppedError: cronsync is shutting down.
    """
    argv = [git_program(), "archive", "--format=tar", f"{commit}^{{commit}}"]
    try:
        proc = process.spawn(argv, cwd=checkout, env=git_environment(in_checkout(checkout)))
    except OSError as exc:
        raise GitFailed(("archive",), 127, f"fatal: cannot run git: {exc.strerror}") from exc
    assert proc.stdout is not None and proc.stderr is not None
    try:
        try:
            extract_tar(proc.stdout, dest)
            while proc.stdout.read(65536):  # drain the padding after the end marker
                pass
        except tarfile.TarError:
            # a stream that broke off: git's own failure says more
            while proc.stdout.read(65536):
                pass
            stderr = proc.stderr.read().decode("utf-8", "replace")
            if proc.wait() != 0:
                raise GitFailed(("archive",), proc.returncode, stderr) from None
            raise
        stderr = proc.stderr.read().decode("utf-8", "replace")
        status = proc.wait()
    except BaseException:
        process.end_group(proc)
        raise
    finally:
        process.release(proc)
        proc.stdout.close()
        proc.stderr.close()
    if process.stopping():
        raise process.StoppedError("git was stopped: cronsync is shutting down")
    if status != 0:
        raise GitFailed(("archive",), status, stderr)


def list_commit(checkout: Path, commit: str, timeout: Optional[float] = None) -> dict[str, str]:
    """Return every path of ``commit``'s tree with its git mode and object id
    (``{"jobs/x.toml": "100644 3b18e5..."}``), as ``git ls-tree -r`` lists them: the
    content keys a build may reuse earlier checks by.

    Raises:
        SourceError: git cannot list the commit (a damaged checkout, an unknown commit).
        StoppedError: cronsync is shutting down.
    """
    check_rev(checkout, commit)
    try:
        out = checkout_git(
            checkout, "ls-tree", "-r", "-z", "--full-tree", f"{commit}^{{tree}}", timeout=timeout
        )
    except GitFailed as exc:
        raise SourceError(
            f"cannot list commit {commit[:12]} of {checkout}: {failure_reason(exc.stderr)}"
        ) from exc
    listing = {}
    for entry in out.split("\0"):
        if not entry:
            continue
        head, _, path = entry.partition("\t")
        mode, _kind, blob = head.split(" ")
        listing[path] = f"{mode} {blob}"
    return listing
