"""Every secret value the test run put into a secret store, and where else it ended up.

Issue 10 asks that a search for the value of every secret used in the whole test run
finds it only in the secret stores. The ledger learns the values from the stores
themselves, so no test has to remember to register one:

* Secrets Manager and SSM (moto): every ``CreateSecret``, ``PutSecretValue``,
  ``UpdateSecret`` and ``PutParameter`` (SecureString) that a client in the test
  process sends is noted (a JSON secret string also by each of its string values);
* the file backend: at the end, every ``secrets.d/*.toml`` below the run's temporary
  folder, and every store a test named with :func:`secret_store`, is read (its string
  values).

At the end of the session every file below pytest's temporary folder is searched for
those values. Left out:

* the stores themselves: ``secrets.d/*.toml``, a store a test named with
  :func:`secret_store`, and any other private (mode 0600) ``*.toml`` file, which is
  what the file backend reads and ``cronsync import --secrets-file`` writes;
* the legacy host's own crontabs, which tests write with inline passwords on purpose
  (what ``import`` moves out and ``adopt`` masks): files below a ``cron.d`` or
  ``crontabs`` folder or named ``crontab`` (but the ``cronsync`` cron file cronsync
  writes, which is searched), their other names (hard links), and files a test named
  with :func:`legacy_input`;
* ``adopt-backups/`` folders: adopt's root-only copies of those crontabs, kept until
  ``cronsync adopt --purge-backups``;
* ``.git`` folders: git compresses its objects, so a value would not show there in
  plain (a secret committed by mistake shows in the work tree or the export).

Values shorter than :data:`MIN_LENGTH` are not searched (too likely by chance).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11 only
    import tomli as tomllib


MIN_LENGTH = 8
_STORE_CALLS = {"CreateSecret", "PutSecretValue", "UpdateSecret"}
_values: set[str] = set()
_legacy: set[str] = set()
_stores: set[str] = set()
_original_call: Any = None


def note_value(value: object) -> None:
    """Remember a secret value (and, when it is a JSON object, its string values)."""
    if not isinstance(value, str):
        return
    if len(value) >= MIN_LENGTH:
        _values.add(value)
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    if isinstance(parsed, dict):
        for item in parsed.values():
            if isinstance(item, str) and len(item) >= MIN_LENGTH:
                _values.add(item)


def legacy_input(path: Path) -> Path:
    """Mark ``path`` as input a test wrote with a secret in it on purpose (a legacy
    crontab, say): the end-of-run search leaves it out. Returns ``path``."""
    _legacy.add(str(path.resolve()))
    return path


def secret_store(path: Path) -> Path:
    """Name a file-backend store kept somewhere else than ``secrets.d/`` (its values are
    noted and the file itself is not searched). Returns ``path``."""
    _stores.add(str(path.resolve()))
    return path


def _recording_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    if operation_name in _STORE_CALLS:
        note_value(api_params.get("SecretString"))
    elif operation_name == "PutParameter" and api_params.get("Type") == "SecureString":
        note_value(api_params.get("Value"))
    return _original_call(self, operation_name, api_params)


def start_recording() -> None:
    """Note the values of secret-store writes made by botocore clients in this process
    (the call goes on unchanged)."""
    global _original_call
    try:
        from botocore.client import BaseClient
    except ImportError:  # the tests that need AWS skip without it
        return
    if _original_call is None:
        _original_call = BaseClient._make_api_call
        BaseClient._make_api_call = _recording_call  # type: ignore[method-assign]


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for item in data.values():
            yield from _strings(item)
    elif isinstance(data, list):
        for item in data:
            yield from _strings(item)


def file_stores(base: Path) -> list[Path]:
    """The file backend's stores below ``base`` (``secrets.d/*.toml``)."""
    found = []
    for folder, _dirs, files in os.walk(base):
        if os.path.basename(folder) == "secrets.d":
            found.extend(Path(folder, name) for name in files if name.endswith(".toml"))
    return found


def _read_store(path: Path) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    for value in _strings(data):
        note_value(value)


LEGACY_FOLDERS = ("cron.d", "crontabs")
LEGACY_NAMES = ("crontab",)
OUR_CRON_FILE = "cronsync"
BACKUPS = "adopt-backups"
GIT_DIR = ".git"


def _is_private_toml(path: Path, info: os.stat_result) -> bool:
    return path.name.endswith(".toml") and not info.st_mode & 0o077


def _is_legacy_crontab(path: Path) -> bool:
    if path.name == OUR_CRON_FILE:
        return False
    return path.name in LEGACY_NAMES or path.parent.name in LEGACY_FOLDERS


def _files(base: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Regular files below ``base`` (no symbolic link followed), adopt's backups and git's
    own folders (compressed objects: no value shows there in plain) left out."""
    for folder, dirs, files in os.walk(base):
        dirs[:] = [name for name in dirs if name not in (BACKUPS, GIT_DIR)]
        for name in files:
            path = Path(folder, name)
            try:
                info = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                yield path, info


def leaks(base: Path) -> list[str]:
    """Files below ``base`` holding a noted secret value, outside the stores and the
    legacy input (see the module doc); as ``path: secret #N`` lines (never the value)."""
    files = list(_files(base))
    stores = {str(p.resolve()) for p in file_stores(base)} | _stores
    stores |= {str(path.resolve()) for path, info in files if _is_private_toml(path, info)}
    for store in stores:
        if os.path.exists(store):
            _read_store(Path(store))
    legacy = {
        (info.st_dev, info.st_ino)
        for path, info in files
        if _is_legacy_crontab(path) or str(path.resolve()) in _legacy
    }
    needles = [value.encode() for value in sorted(_values)]
    found = []
    for path, info in files:
        if str(path.resolve()) in stores or (info.st_dev, info.st_ino) in legacy:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        hits = [str(i) for i, needle in enumerate(needles) if needle in data]
        if hits:
            found.append(f"{path}: secret #{', #'.join(hits)}")
    return found


def noted() -> int:
    """How many values the ledger holds."""
    return len(_values)
