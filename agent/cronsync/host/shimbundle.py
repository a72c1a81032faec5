"""The ``cronsync-run`` bundle: the shim's start-up modules compiled into one file.

Importing a module from its folder costs a search, an open, two stats and a read (the
shim imports about 25 at every job start); the launcher ``cronsync install-shim`` writes
loads them from this one file instead: ``marshal`` data of
``(FORMAT, bytecode magic number, site folder, finder code, entries)``, the finder being
:mod:`cronsync.host.bundleloader`'s code and each entry a module's code with its source
file's path, size and modification time. At start the finder checks every source against
them (as Python checks a ``.pyc``) and is used only when all match: an upgrade of
cronsync without ``cronsync install-shim`` again costs speed, never correctness.

The file is ``lib/cronsync-run.bundle`` in the prefix of the Python running cronsync (its
virtualenv), written atomically, 0644, root-owned as root.
"""

from __future__ import annotations

import marshal
import os
import stat
import subprocess
import sys
from importlib.util import MAGIC_NUMBER
from typing import Any, Optional

from cronsync.core.errors import InstallError
from cronsync.files.atomic import atomic_write

FORMAT = 2
MAX_BYTES = 16 << 20  # a bundle is about 200 KB; a bigger file is not one
BUNDLE_NAME = "cronsync-run.bundle"
# What the shim imports at every start: the package of its entry point and the runner.
STARTUP_IMPORTS = ("cronsync.cli.shim", "cronsync.run.runner")
RUN_TIMEOUT = 60.0


def bundle_path(prefix: str = sys.prefix) -> str:
    """The bundle of the Python installed at ``prefix`` (links in its folder's path
    resolved, as the launcher names it)."""
    return os.path.join(os.path.realpath(os.path.join(prefix, "lib")), BUNDLE_NAME)


def startup_modules(python: str, site_dir: str) -> list[str]:
    """Return the cronsync modules the shim imports at start, as ``python -I -S`` with
    ``site_dir`` on its path imports them (the launcher's way).

    Raises:
        InstallError: the interpreter could not list them.
    """
    code = (
        f"import sys; sys.path.append({site_dir!r}); "
        + "; ".join(f"import {name}" for name in STARTUP_IMPORTS)
        + "; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'cronsync')))"
    )
    done = run_clean(
        [python, "-I", "-S", "-c", code], f"cannot list the shim's modules with {python}"
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"cannot list the shim's modules with {python}: {last}")
    return done.stdout.split()


def run_clean(argv: list[str], failure: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as cron would start it (an environment of PATH only), its output
    captured as text, for at most a minute.

    Raises:
        InstallError: it could not start or did not end in time (``failure: why``).
    """
    try:
        return subprocess.run(
            argv,
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{failure}: {exc}") from exc


def build_bundle(modules: list[str], site_dir: str) -> bytes:
    """Compile ``modules`` (found below ``site_dir``) and the finder into a bundle.

    Raises:
        InstallError: a module's source cannot be read or compiled.
    """
    entries: dict[str, tuple[str, bool, int, int, Any]] = {}
    for name in modules:
        entries[name] = _entry(name, site_dir)
    return marshal.dumps((FORMAT, MAGIC_NUMBER, site_dir, _finder_code(), entries))


def _entry(name: str, site_dir: str) -> tuple[str, bool, int, int, Any]:
    base = os.path.join(site_dir, *name.split("."))
    package = os.path.isfile(os.path.join(base, "__init__.py"))
    origin = os.path.join(base, "__init__.py") if package else base + ".py"
    try:
        with open(origin, "rb") as handle:
            before = os.fstat(handle.fileno())
            source = handle.read()
        code = compile(source, origin, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InstallError(f"cannot bundle {name} from {origin}: {exc}") from exc
    return (origin, package, before.st_size, before.st_mtime_ns, code)


def _finder_code() -> Any:
    from cronsync.host import bundleloader

    origin = bundleloader.__file__
    with open(origin, "rb") as handle:
        return compile(handle.read(), origin, "exec", dont_inherit=True)


def write_bundle(path: str, data: bytes, owner: Optional[tuple[int, int]]) -> None:
    """Write the bundle ``data`` to ``path`` atomically, mode 0644, ``owner``.

    Raises:
        InstallError: it could not be written.
    """
    atomic_write(path, data, mode=0o644, owner=owner)


def bundle_state(path: str, site_dir: str) -> str:
    """Say whether the launcher loading cronsync from ``site_dir`` will use the bundle at
    ``path``: ``current`` (made for this interpreter's bytecode and ``site_dir``, every
    source as bundled), ``stale`` (a source changed or is gone, another interpreter's or
    another install's bundle), ``missing``, or ``unreadable`` (not a regular file, or not
    a bundle)."""
    data = _read(path)
    if data is None:
        return "missing"
    try:
        bundle = marshal.loads(data)  # noqa: S302 - cronsync's own file, trusted as its .pyc
        fmt, magic, folder, _code, entries = bundle
        sources = [(entry[0], entry[2], entry[3]) for entry in entries.values()]
    except Exception:  # any other shape: not a bundle this cronsync made
        return "unreadable"
    if fmt != FORMAT:
        return "unreadable"
    if magic != MAGIC_NUMBER or folder != site_dir:
        return "stale"
    for origin, size, mtime_ns in sources:
        try:
            found = os.stat(origin)
        except (OSError, TypeError, ValueError):
            return "stale"
        if (found.st_size, found.st_mtime_ns) != (size, mtime_ns):
            return "stale"
    return "current"


def _read(path: str) -> Optional[bytes]:
    """The bytes of the regular file ``path`` (not through a link, never blocking), b""
    for anything else there, None when nothing is."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, MAX_BYTES)
    finally:
        os.close(fd)


def install_bundle(
    python: str, site_dir: str, owner: Optional[tuple[int, int]]
) -> tuple[str, bool]:
    """Make the bundle of the cronsync at ``site_dir`` for ``python`` and write it to its
    virtualenv's ``lib/`` unless it is there already (the same bytes, mode 0644, owned by
    ``owner``); return its path and whether it was written.

    Raises:
        UsageError: as root, its folder could be changed by another user.
        InstallError: the modules could not be listed, compiled or written.
    """
    from cronsync.files.trusted import output_folder

    path = bundle_path()
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise InstallError(f"cannot write {path}: no folder {folder}")
    path = os.path.join(output_folder(folder, "the bundle's folder"), BUNDLE_NAME)
    data = build_bundle(startup_modules(python, site_dir), site_dir)
    if _read(path) == data and _owned_0644(path, owner):
        return path, False
    write_bundle(path, data, owner)
    return path, True


def _owned_0644(path: str, owner: Optional[tuple[int, int]]) -> bool:
    info = os.lstat(path)
    mine = owner is None or (info.st_uid, info.st_gid) == owner
    return mine and stat.S_IMODE(info.st_mode) == 0o644
