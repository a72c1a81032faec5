"""The ``cronsync-run`` launcher that cron lines call: Python started with ``-I -S``.

The console script pip writes for ``cronsync-run`` starts the venv's Python with ``site``:
it reads ``pyvenv.cfg``, runs every ``.pth`` file (setuptools' among them, at every
start) and Debian's ``sitecustomize``, and honours ``PYTHONPATH`` and the other
``PYTHON*`` variables of the environment it is started in. The shim runs at every
scheduled minute of every job, so ``cronsync install-shim`` writes a launcher instead::

    #!/opt/cronsync/bin/python3 -IS
    import sys
    sys.path.append('/opt/cronsync/lib/python3.11/site-packages')
    ...

``-I`` (isolated): no ``PYTHON*`` variable, no user site, no script folder on
``sys.path``; ``-S``: no ``site``, so only the standard library and the one folder the
launcher names (where cronsync is installed, after the standard library) are importable.
What the shim imports is the standard library and cronsync (``cronsync-run`` imports no
third-party package), so nothing is lost but start-up time.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from cronsync import __version__
from cronsync.core.errors import CronsyncError, InstallError, UsageError
from cronsync.core.suppress import suppress
from cronsync.files.atomic import fsync_dir, temp_sibling
from cronsync.files.trusted import output_folder
from cronsync.host import shimbundle

MARKER = "# cronsync-run launcher, written by `cronsync install-shim`"
PIP_SCRIPT_LINE = "from cronsync.cli.shim import "  # main (older cronsync) or launch
SHEBANG_LIMIT = 127  # bytes of "#!..." Linux reads before 5.1 (255 after); keep below both
HEAD_BYTES = 4096


def launcher_text(python: str, site_dir: str, bundle: Optional[str] = None) -> str:
    """Return the launcher's text for ``python`` loading cronsync from ``site_dir``.

    Args:
        python: absolute path of the interpreter, without whitespace.
        site_dir: the folder that holds the ``cronsync`` package.
        bundle: the shim's bundle (:mod:`cronsync.host.shimbundle`), used when it is
            there and current; None: none.

    Raises:
        UsageError: ``python`` is not absolute, holds whitespace, or the ``#!`` line
            would be longer than the kernel reads.
    """
    if not os.path.isabs(python) or any(c.isspace() for c in python):
        raise UsageError(f"interpreter {python!r} is not an absolute path without spaces")
    shebang = f"#!{python} -IS"
    if len(shebang.encode()) > SHEBANG_LIMIT:
        raise UsageError(f"interpreter path {python} is too long for a #! line")
    return (
        f"{shebang}\n"
        f"{MARKER}; written again by it after an upgrade.\n"
        "# -I: no PYTHON* variables, no user site; -S: no site, no .pth, no sitecustomize.\n"
        "import sys\n"
        f"sys.path.append({site_dir!r})\n"
        + (_bundle_lines(bundle, site_dir) if bundle else "")
        + "try:\n"
        "    from cronsync.cli.shim import launch\n"
        "except ImportError as exc:\n"
        "    sys.stderr.write(\n"
        f'        "cronsync-run: cannot load cronsync from {_escaped(site_dir)}: %s '
        '(run `cronsync install-shim` again)\\n" % exc\n'
        "    )\n"
        "    sys.exit(125)\n"
        "launch()\n"
    )


# Load the start-up modules from the bundle; any trouble with it: import them as usual.
# Opened without following a link and without blocking (a FIFO put there must not hang
# every job), used only when it is a regular file made for this interpreter's bytecode
# (its magic number) and this site folder.
_BUNDLE_LINES = """\
try:
    import marshal, posix
    from _frozen_importlib_external import MAGIC_NUMBER
    _flags = posix.O_RDONLY | posix.O_NONBLOCK | posix.O_NOFOLLOW | posix.O_CLOEXEC
    _fd = posix.open({bundle}, _flags)
    try:
        if posix.fstat(_fd).st_mode & 0o170000 == 0o100000:
            _bundle = marshal.loads(posix.read(_fd, {limit}))
            if _bundle[:3] == ({fmt}, MAGIC_NUMBER, {site}):
                _finder = {{"__name__": "cronsync-run bundle"}}
                exec(_bundle[3], _finder)
                _finder["install"](_bundle[4])
            del _bundle
    finally:
        posix.close(_fd)
except Exception:
    pass
"""


def _bundle_lines(bundle: str, site_dir: str) -> str:
    return _BUNDLE_LINES.format(
        bundle=repr(bundle),
        limit=shimbundle.MAX_BYTES,
        fmt=shimbundle.FORMAT,
        site=repr(site_dir),
    )


def _escaped(text: str) -> str:
    """``text`` safe inside a double-quoted Python string literal with %-formatting."""
    return repr(text)[1:-1].replace('"', '\\"').replace("%", "%%")


def installed_site_dir() -> str:
    """Return the folder the running cronsync is imported from (its package's parent)."""
    import cronsync

    return os.path.dirname(os.path.dirname(os.path.abspath(cronsync.__file__)))


def read_head(path: str) -> Optional[str]:
    """Return the first bytes of the regular file ``path`` as text (undecodable bytes
    replaced), or None when nothing is there.

    Raises:
        UsageError: ``path`` is a folder or another kind of file, or cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if not _is_regular(fd):
            raise UsageError(f"{path} is not a regular file")
        return os.read(fd, HEAD_BYTES).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def launcher_state(path: str, expected: str) -> str:
    """Say what is at ``path``: ``current`` (this launcher), ``outdated`` (a launcher of
    another install or version, or pip's console script), ``missing``, or ``foreign``
    (a file that is not a cronsync-run).

    Raises:
        UsageError: ``path`` is a folder or unreadable.
    """
    if os.path.islink(path) and not os.path.exists(path):
        return "missing"
    head = read_head(path)
    if head is None:
        return "missing"
    if head == expected:
        return "current"
    if MARKER in head or PIP_SCRIPT_LINE in head:
        return "outdated"
    return "foreign"


def install_launcher(path: str, text: str, owner: Optional[tuple[int, int]]) -> None:
    """Replace ``path`` with the launcher ``text`` (mode 0755, ``owner``) after running it.

    The new launcher is written beside ``path``, made durable, started with
    ``--version`` (it must answer with this cronsync's version), and only then renamed
    over ``path``: a launcher that cannot start never replaces a working one. A
    symbolic link at ``path`` is itself replaced, its target left alone.

    Raises:
        UsageError: ``path`` is not absolute, or holds a file that is not a cronsync-run,
            or (as root) its folder could be changed by another user, who could swap
            the launcher root probes or cron runs (``files.trusted.output_folder``).
        InstallError: the folder is missing or not writable, or the new launcher did not
            start.
    """
    if not os.path.isabs(path):
        raise UsageError(f"--path {path!r} is not absolute")
    if os.path.isdir(os.path.dirname(path)):  # as root: a folder only root can change
        folder = output_folder(os.path.dirname(path), "--path")
        path = os.path.join(folder, os.path.basename(path))
    if launcher_state(path, text) == "foreign":
        raise UsageError(
            f"{path} exists and is not a cronsync-run launcher or console script; "
            "move it away or give --path"
        )
    tmp = str(temp_sibling(path))
    try:
        _write(tmp, text, owner)
        _probe(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise InstallError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(os.path.dirname(path))


def _write(tmp: str, text: str, owner: Optional[tuple[int, int]]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o700)
    with open(fd, "w", encoding="utf-8", closefd=True) as handle:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, 0o755)
        handle.write(text)
        handle.flush()
        os.fsync(fd)


def _probe(launcher: str) -> None:
    """Start ``launcher --version`` with an empty environment.

    Raises:
        InstallError: it did not answer ``cronsync-run VERSION`` with this version.
    """
    done = shimbundle.run_clean([launcher, "--version"], "the new launcher did not start")
    answer = done.stdout.strip()
    if done.returncode != 0 or answer != f"cronsync-run {__version__}":
        said = (done.stderr.strip() or answer).splitlines()[-1:] or ["no output"]
        raise InstallError(
            f"the new launcher did not start (exit {done.returncode}: {said[0]}); "
            "nothing was replaced"
        )


def default_owner() -> Optional[tuple[int, int]]:
    """root:root when run as root (cron runs the launcher for every job user), else None."""
    return (0, 0) if os.geteuid() == 0 else None


def interpreter() -> str:
    """The interpreter running cronsync (a venv's ``bin/python3``, not its target)."""
    if not sys.executable:
        raise CronsyncError("cannot tell which Python runs cronsync (sys.executable is empty)")
    return sys.executable
