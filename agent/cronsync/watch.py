"""Watch the files cronsync installed, so an edit by hand is seen within a second.

watchdog (inotify on Linux) watches the managed cron file's directory, the state
directory (for the ``current`` link) and the releases directory; events about anything
else there (other cron files, state.json, locks) are ignored. The callback only says
"look again" (and whether to look at every file of the release: an event under
``releases/`` may be an edited script, which only the full comparison sees); the agent
compares contents, so its own writes are never drift.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from .config import Paths

CHANGES = frozenset({"created", "deleted", "modified", "moved", "closed", "attrib"})


class _Handler:
    """Calls ``on_change(full)`` for events about the paths we care about."""

    def __init__(
        self,
        interesting: Callable[[str], bool],
        in_releases: Callable[[str], bool],
        on_change: Callable[[bool], None],
    ) -> None:
        self.interesting = interesting
        self.in_releases = in_releases
        self.on_change = on_change

    def dispatch(self, event: Any) -> None:
        """watchdog's entry point for every event (reads are not changes: the drift
        check itself opens these files)."""
        if getattr(event, "event_type", "") not in CHANGES:
            return
        paths = [
            os.fsdecode(path)
            for path in (getattr(event, "src_path", ""), getattr(event, "dest_path", ""))
            if path
        ]
        if any(self.interesting(path) for path in paths):
            self.on_change(any(self.in_releases(path) for path in paths))


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

    def interesting(self, path: str) -> bool:
        """Whether an event about ``path`` may be drift."""
        return path in (self.cron_file, self.current) or self.in_releases(path)

    def in_releases(self, path: str) -> bool:
        """Whether ``path`` is inside the releases directory."""
        return path.startswith(self.releases)

    def start(self) -> None:
        """Start watching (what exists now; ``refresh`` adds directories made later)."""
        from watchdog.observers import Observer

        self._observer = Observer()
        self._observer.start()
        self.refresh()

    def refresh(self) -> None:
        """Watch directories that did not exist at start (after the first sync)."""
        if self._observer is None:
            return
        handler = _Handler(self.interesting, self.in_releases, self.on_change)
        wanted = [
            (os.path.dirname(self.cron_file), False),
            (str(self.paths.state_dir), False),
            (str(self.paths.releases), True),
        ]
        for directory, recursive in wanted:
            if directory not in self._watched and os.path.isdir(directory):
                self._observer.schedule(handler, directory, recursive=recursive)
                self._watched.add(directory)

    def stop(self) -> None:
        """Stop watching and wait for watchdog's thread."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
