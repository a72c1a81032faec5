"""The shim's file secrets backend: a local TOML file per user (``secrets.file``).

The file must be a regular file owned by root or by the user reading it (the job's),
with no group or other permission bits; a reason never quotes its content. tomllib is
imported only when a file is read. :mod:`cronsync.secrets.fetch` resolves the references.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from typing import Any, Optional, Union

from cronsync.secrets.outcome import NOT_FOUND, SSM, SSM_PREFIX, Key, Outcome, Stored

_TOML_LINE = re.compile(r"at line (\d+)")


def fetch_file(wanted: list[Key], path: str) -> dict[Key, Outcome]:
    """Look each reference up in the TOML secrets file; SSM ones under ``ssm:NAME``.

    Args:
        wanted: the (store, name) ids to fetch.
        path: the secrets file (``{user}`` already replaced).

    Returns:
        Each id's stored value, or the reason it failed (every id gets the same reason
        when the file cannot be used).
    """
    doc = _read_secrets_file(path)
    if isinstance(doc, str):
        return dict.fromkeys(wanted, doc)
    results: dict[Key, Outcome] = {}
    for store, name in wanted:
        entry = SSM_PREFIX + name if store == SSM else name
        results[(store, name)] = Stored(doc[entry]) if entry in doc else NOT_FOUND
    return results


def _read_secrets_file(path: str) -> Union[dict[str, Any], str]:
    """Return the parsed secrets file, or the reason it cannot be used.

    Refused unless it is a regular file owned by root or by us with no group/other
    permission bits (checked on the open descriptor, so it is the file we read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return f"secrets file {path} does not exist"
    except PermissionError:
        return f"secrets file {path} is not readable by uid {os.geteuid()}"
    except OSError as exc:
        return f"cannot open secrets file {path}: {exc.strerror}"
    with os.fdopen(fd, "rb") as handle:
        unsafe = _unsafe_file(path, os.fstat(fd))
        if unsafe:
            return unsafe
        try:
            data = handle.read()
        except OSError as exc:
            return f"cannot read secrets file {path}: {exc.strerror}"
    return _parse_secrets_toml(path, data)


def _unsafe_file(path: str, info: os.stat_result) -> Optional[str]:
    """Return why a secrets file must not be trusted, or None when it may."""
    if not stat.S_ISREG(info.st_mode):
        return f"secrets file {path} is not a regular file"
    uid = os.geteuid()
    if info.st_uid not in (0, uid):
        return f"secrets file {path} is owned by uid {info.st_uid}, not root or uid {uid}"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o044:
        return f"secrets file {path} is readable by group/others (chmod 600)"
    if mode & 0o033:
        return f"secrets file {path} has group/other permissions {mode:04o} (chmod 600)"
    return None


def _parse_secrets_toml(path: str, data: bytes) -> Union[dict[str, Any], str]:
    """Return the TOML document, or a reason naming at most a line (never content)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

    try:
        doc: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return f"secrets file {path} is not UTF-8"
    except tomllib.TOMLDecodeError as exc:
        line = _TOML_LINE.search(str(exc))
        where = f" (line {line.group(1)})" if line else ""
        return f"secrets file {path} is not valid TOML{where}"
    return doc
