"""Filesystem primitives every adapter uses: atomic writes and symlinks, fsync
(``atomic``), tree removal (``tree``), exclusive locks (``lock``), and path strings built
without pathlib for the shim (``paths``).

The only place that writes a file atomically or takes a lock: a reader never sees a
half-written cron file, release or state file. Every ``OSError`` becomes a one-line
:class:`~cronsync.core.errors.InstallError` (or ``LockBusyError``) naming the path.

May import: ``core`` (errors) and the standard library.
"""
