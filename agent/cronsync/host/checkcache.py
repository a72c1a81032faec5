"""The check cache of a release: where it lives, what it is keyed by, reading and writing.

The build of a release writes ``checks.json`` into the release folder (root's, mode
0600, written atomically before the folder is moved into place, so it is as complete as
the release). The next sync reads the installed release's cache; a cache that is
missing, damaged (its first line is the SHA-256 of the rest), of another version or of
other host facts is not used, and the build checks everything: it costs time, never a
wrong result. :mod:`cronsync.core.checkcache` decides what a cache still holds for.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import zoneinfo
from dataclasses import astuple
from pathlib import Path
from typing import Optional

import cronsync
from cronsync.core.checkcache import CheckCache, decode_cache, encode_cache
from cronsync.core.model import HostContext
from cronsync.files.atomic import atomic_write

CACHE_FILE = "checks.json"
# The programs the checks run or look for: another bash or sh may parse differently.
_TOOLS = ("sh", "bash", "dash", "ksh", "zsh")


def _program(name: str) -> Optional[list[object]]:
    """Which ``name`` runs and its size and change time (an upgrade changes them)."""
    found = shutil.which(name)
    if found is None:
        return None
    try:
        info = os.stat(found)
    except OSError:
        return [found]
    return [found, info.st_size, info.st_mtime_ns]


def _zone_database() -> str:
    """The version line of the time-zone database zoneinfo reads (``unknown time zone``
    depends on it), or "" when there is none to read."""
    for folder in zoneinfo.TZPATH:
        try:
            with open(os.path.join(folder, "tzdata.zi"), "rb") as handle:
                return handle.readline(100).decode("ascii", "replace").strip()
        except OSError:
            continue
    return ""


def facts_key(config_digest: str, host: HostContext) -> str:
    """Return the key of everything outside the repository the checks depend on: the
    agent config's digest (its rules version included), this host's users and zone as
    validation sees them, cronsync's and Python's versions, the shells that parse and
    the time-zone database."""
    facts = [
        config_digest,
        cronsync.__version__,
        sys.version,
        [_program(tool) for tool in _TOOLS],
        _zone_database(),
        [list(item) if isinstance(item, tuple) else item for item in astuple(host)],
    ]
    text = json.dumps(facts, sort_keys=True, default=sorted)
    return hashlib.sha256(text.encode()).hexdigest()


def load_cache(release: Path) -> Optional[CheckCache]:
    """Return the cache of ``release``, or None when it has none that can be trusted."""
    try:
        data = (release / CACHE_FILE).read_bytes()
        digest, _, body = data.partition(b"\n")
        if hashlib.sha256(body).hexdigest().encode() != digest:
            return None
        return decode_cache(json.loads(body))
    except (OSError, ValueError, RecursionError):
        return None


def save_cache(release: Path, cache: CheckCache) -> None:
    """Write ``cache`` into the (staged) release folder ``release``.

    Raises:
        InstallError: the file cannot be written.
    """
    body = json.dumps(encode_cache(cache), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(body).hexdigest().encode()
    atomic_write(release / CACHE_FILE, digest + b"\n" + body, mode=0o600)
