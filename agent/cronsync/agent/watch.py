"""Watch the files cronsync installed, so an edit by hand is seen within a second.

watchdog (inotify on Linux) watches the managed cron file's directory, the state
directory (for the ``current`` link) and the releases directory; events about anything
else there (other cron files, state.json, locks) are ignored, and so are the sync's own
staging directories (``releases/.tmp-*``, moved into place or removed: an install is
not an edit) and releases ``current`` does not name (old ones being pruned). The
callback only says "look again" (and whether to look at every file of the release: an
event in the installed release may be an edited script, which only the full comparison
sees); the agent compares contents, so its own writes are never drift.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from cronsync.host.config import Paths
from cronsync.host.install import TEMP_PREFIX

CHANGES = frozenset({"created", "deleted", "modified", "moved", "closed", "attrib"})
# watchdog's inotify emitter says this when it is stopped while blocked in a read (every
# stop), and warns when a directory moved inside a recursive watch is watched again.
_STOP_NOISE = "called when the thread is inactive"
_REWATCH_WARNING = r"Callback with id .* (already exists|does not exist)"


class _QuietStop(logging.Filter):
    """Drops watchdog's log line about an emitter read that ended after its stop."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _STOP_NOISE not in str(record.msg)


def _quiet_watchdog() -> None:
    """Keep watchdog's harmless noise out of the agent's log (idempotent)."""
    logger = logging.getLogger("watchdog.observers.inotify")
    if not any(isinstance(f, _QuietStop) for f in logger.filters):
        logger.addFilter(_QuietStop())
    warnings.filterwarnings("ignore", message=_REWATCH_WARNING, category=RuntimeWarning)


class _Handler:
    """Calls ``on_change(full)`` for events ``classify`` does not ignore."""

    def __init__(
        self,
        classify: Callable[[str, str], Optional[bool]],
        on_change: Callable[[bool], None],
    ) -> None:
        self.classify = classify
        self.on_change = on_change

    def dispatch(self, event: Any) -> None:
        """watchdog's entry point for every event (reads are not changes: the drift
        check itself opens these files)."""
        if getattr(event, "event_type", "") not in CHANGES:
            return
        src = os.fsdecode(getattr(event, "src_path", "") or "")
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        full = self.classify(src, dest)
        if full is not None:
            self.on_change(full)


class DriftWatcher:
    """Watches the managed cron file, ``current`` and the releases.

    Args:
        paths: the host's paths.
        cron_file: the managed cron file (it may differ from ``paths.cron_file`` after a
            config change, until the next install).
        on_change: called (from watchdog's thread) when one of them may have changed,
            with True when the change is inside a release (a full comparison is due:
            only it sees a script's content or mode; chmod counts, reads do not).
    """

    def __init__(self, paths: Paths, cron_file: Path, on_change: Callable[[bool], None]) -> None:
        self.paths = paths
        self.cron_file = str(cron_file)
        self.current = str(paths.current)
        self.releases = str(paths.releases) + os.sep
        self.on_change = on_change
        self._observer: Optional[Any] = None
        self._watched: set[str] = set()
        self._started = False  # the watches of start() itself report nothing

    def classify(self, src: str, dest: str = "") -> Optional[bool]:
        """Whether an event about ``src`` (moved to ``dest``) may be drift: None when
        not, else whether it is inside the installed release (a full comparison)."""
        if self.is_staging(src):  # the sync's own: written, moved into place, removed
            return None
        found = [path for path in (src, dest) if path and self.interesting(path)]
        if not found:
            return None
        return any(self.in_releases(path) for path in found)

    def interesting(self, path: str) -> bool:
        """Whether an event about ``path`` may be drift."""
        if path in (self.cron_file, self.current):
            return True
        if not self.in_releases(path) or self.is_staging(path):
            return False
        installed = self._installed_release()
        return installed is None or _release_name(path, self.releases) == installed

    def in_releases(self, path: str) -> bool:
        """Whether ``path`` is inside the releases directory."""
        return path.startswith(self.releases)

    def is_staging(self, path: str) -> bool:
        """Whether ``path`` is in a sync's staging directory (``releases/.tmp-*``, also
        a damaged release set aside)."""
        return self.in_releases(path) and _release_name(path, self.releases).startswith(TEMP_PREFIX)

    def _installed_release(self) -> Optional[str]:
        """The release ``current`` names now (None when it cannot be read: then every
        release counts)."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        return os.path.basename(os.path.normpath(target)) or None

    def start(self) -> None:
        """Start watching (what exists now; ``refresh`` adds directories made later)."""
        from watchdog.observers import Observer

        _quiet_watchdog()
        self._observer = Observer()
        self._observer.start()
        self.refresh()
        self._started = True

    def refresh(self) -> None:
        """Watch directories that did not exist at start (after the first sync).

        What changed in a directory before it was watched went unseen: when a watch is
        added, ``on_change`` is told (a full comparison for the releases), so an edit
        made between the install and this call is found as well.
        """
        if self._observer is None:
            return
        handler = _Handler(self.classify, self.on_change)
        wanted = [
            (os.path.dirname(self.cron_file), False),
            (str(self.paths.state_dir), False),
            (str(self.paths.releases), True),
        ]
        added = []
        for directory, recursive in wanted:
            if directory not in self._watched and os.path.isdir(directory):
                self._observer.schedule(handler, directory, recursive=recursive)
                self._watched.add(directory)
                added.append(directory)
        if added and self._started:
            self.on_change(str(self.paths.releases) in added)

    def stop(self) -> None:
        """Stop watching and wait for watchdog's thread (quietly: see _QuietStop)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


def _release_name(path: str, releases: str) -> str:
    """The first component of ``path`` below ``releases`` (which ends with a separator)."""
    return path[len(releases) :].split(os.sep, 1)[0]
