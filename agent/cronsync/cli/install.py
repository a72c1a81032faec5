"""``cronsync install-shim``: write (or check) the launcher cron lines call as ``cronsync-run``.

See :mod:`cronsync.host.shimlauncher` for why the launcher starts Python with ``-I -S``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from cronsync.cli.jsonout import emit_json
from cronsync.core.errors import CronsyncError

FORMAT = "cronsync.install-shim/1"
DEFAULT_SHIM = "/usr/local/bin/cronsync-run"
STATES = {
    "current": "is this cronsync's launcher",
    "outdated": "is another cronsync-run (an older launcher or pip's console script)",
    "missing": "does not exist",
    "foreign": "is not a cronsync-run",
}
BUNDLE_STATES = {
    "current": "holds this cronsync's start-up modules",
    "stale": "is stale (cronsync changed or moved since, or Python was upgraded): the shim "
    "imports as usual, slower",
    "missing": "does not exist: the shim imports as usual, slower",
    "unreadable": "is not a bundle this cronsync reads: the shim imports as usual, slower",
}


def _shim_path(args: argparse.Namespace) -> str:
    """``--path``, else ``cron.shim`` of the agent config, else the default; an agent
    config that does not exist yet (a host being set up) means the default."""
    if args.path:
        return str(args.path)
    from cronsync.host.config import config_path, load_config

    if not config_path(args.config).exists():
        return DEFAULT_SHIM
    return load_config(args.config).shim


def cmd_install_shim(args: argparse.Namespace) -> int:
    """``cronsync install-shim [--path PATH] [--check] [--json]``.

    Returns:
        0 written (or, with ``--check``, already current); 1 with ``--check`` when it is
        not current.

    Raises:
        UsageError: a bad ``--path``, or a file there that is not a cronsync-run.
        InstallError: the launcher could not be written or did not start.
    """
    from cronsync.host import shimbundle, shimlauncher

    path = _shim_path(args)
    python, site_dir = shimlauncher.interpreter(), shimlauncher.installed_site_dir()
    bundle = shimbundle.bundle_path()
    bundle_before = shimbundle.bundle_state(bundle, site_dir)
    with_bundle = shimlauncher.launcher_text(python, site_dir, bundle)
    without = shimlauncher.launcher_text(python, site_dir)
    before = shimlauncher.launcher_state(path, with_bundle)
    if before != "current" and shimlauncher.launcher_state(path, without) == "current":
        before = "current"  # written when the bundle could not be
    problem, launcher_written, bundle_written = None, False, False
    after, bundle_after = before, bundle_before
    if not args.check:
        try:
            bundle, bundle_written = shimbundle.install_bundle(
                python, site_dir, shimlauncher.default_owner()
            )
            bundle_after = "current"
        except CronsyncError as exc:  # the launcher works without it, only slower
            problem = exc.message
            bundle_after = shimbundle.bundle_state(bundle, site_dir)
        text = with_bundle if bundle_after == "current" else without
        launcher_written = shimlauncher.launcher_state(path, text) != "current"
        if launcher_written:
            shimlauncher.install_launcher(path, text, shimlauncher.default_owner())
        after = "current"
    document: dict[str, Any] = {
        "format": FORMAT,
        "path": path,
        "python": python,
        "site_dir": site_dir,
        "state": after,
        "was": before,
        "bundle": {"path": bundle, "state": bundle_after, "was": bundle_before},
        "written": launcher_written or bundle_written,
    }
    if args.json:
        emit_json(document)
    elif args.check:
        print(f"{path} {STATES[before]}")
        print(f"{bundle} {BUNDLE_STATES[bundle_before]}")
    elif not (launcher_written or bundle_written):
        print(f"{path} is already this cronsync's launcher; nothing to do")
    else:
        if launcher_written:
            print(f"wrote {path}: {python} -I -S, cronsync from {site_dir}")
        else:
            print(f"{path} is already this cronsync's launcher")
        if bundle_written:
            print(f"wrote {bundle}: the shim's start-up modules in one file")
    if problem:
        print(
            f"cronsync install-shim: no bundle ({problem}); the launcher imports as usual, slower",
            file=sys.stderr,
        )
    if args.check:
        return 0 if after == "current" and bundle_after == "current" else 1
    return 0


def add_install_shim_verb(
    verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add ``install-shim`` to the ``cronsync`` parser."""
    parser = verbs.add_parser(
        "install-shim",
        help="write the cronsync-run launcher cron lines call (python -I -S)",
        description=(
            "Write the cronsync-run that cron lines call: a launcher that starts this "
            "cronsync's Python with -I -S (no PYTHON* variables, no site, .pth files or "
            "sitecustomize at every job start) and loads cronsync from where it is installed. "
            "It replaces pip's console script or a symbolic link to it, is written beside "
            "the target and started once (--version) before it is renamed into place, "
            "root-owned 0755 when run as root. Beside it, the bundle: the modules the shim "
            "imports at every start compiled into one file (lib/cronsync-run.bundle in "
            "cronsync's virtualenv), used only while every module's source is as bundled. "
            "Run it again after upgrading cronsync (until then the shim imports as usual, "
            "slower)."
        ),
        epilog="exit status: 0 written or current; 1 --check found it not current; "
        "2 --path holds a file that is not a cronsync-run; 4 it could not be written.",
    )
    parser.add_argument(
        "--path",
        metavar="PATH",
        help=f"where to write it (default: cron.shim of the agent config, else {DEFAULT_SHIM})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 unless PATH is this cronsync's launcher and the "
        "bundle is current",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"format": "cronsync.install-shim/1", "path", "python", "site_dir", '
        '"state", "was", "bundle": {"path", "state", "was"}, "written"}',
    )
    add_config(parser)
    parser.set_defaults(func=cmd_install_shim)
