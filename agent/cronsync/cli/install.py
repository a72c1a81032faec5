"""``cronsync install-shim``: write (or check) the launcher cron lines call as ``cronsync-run``.

See :mod:`cronsync.host.shimlauncher` for why the launcher starts Python with ``-I -S``.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from cronsync.cli.jsonout import emit_json

FORMAT = "cronsync.install-shim/1"
DEFAULT_SHIM = "/usr/local/bin/cronsync-run"
STATES = {
    "current": "is this cronsync's launcher",
    "outdated": "is another cronsync-run (an older launcher or pip's console script)",
    "missing": "does not exist",
    "foreign": "is not a cronsync-run",
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
    from cronsync.host import shimlauncher

    path = _shim_path(args)
    text = shimlauncher.launcher_text(shimlauncher.interpreter(), shimlauncher.installed_site_dir())
    before = shimlauncher.launcher_state(path, text)
    if not args.check:
        if before != "current":
            shimlauncher.install_launcher(path, text, shimlauncher.default_owner())
        after = "current"
    else:
        after = before
    document: dict[str, Any] = {
        "format": FORMAT,
        "path": path,
        "python": shimlauncher.interpreter(),
        "site_dir": shimlauncher.installed_site_dir(),
        "state": after,
        "was": before,
        "written": not args.check and before != "current",
    }
    if args.json:
        emit_json(document)
    elif args.check:
        print(f"{path} {STATES[before]}")
    elif before == "current":
        print(f"{path} is already this cronsync's launcher; nothing to do")
    else:
        print(f"wrote {path}: {document['python']} -I -S, cronsync from {document['site_dir']}")
    return 0 if after == "current" else 1


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
            "root-owned 0755 when run as root. Run it again after upgrading cronsync."
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
        help="write nothing; exit 1 unless PATH is this cronsync's launcher",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"format": "cronsync.install-shim/1", "path", "python", "site_dir", '
        '"state", "was", "written"}',
    )
    add_config(parser)
    parser.set_defaults(func=cmd_install_shim)
