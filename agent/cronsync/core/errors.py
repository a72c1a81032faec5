"""The one exception hierarchy of cronsync.

Every error a user can cause or meet carries a one-line message meant for them and
the exit code the CLI returns for it. Adapters translate foreign exceptions
(``GitCommandError``, ``OSError``, ...) into these at their edge with ``raise ... from``,
so the CLI prints one clear line and never a traceback for a user's mistake.

Exit codes (documented in docs/reference/command-line.md):

* 0 — success (or nothing to do)
* 1 — the input has problems (validation failed, a sync was refused)
* 2 — usage error (bad command line, unreadable or invalid agent config)
* 3 — the git remote or checkout failed (unreachable, vanished, corrupt beyond repair)
* 4 — installing on the host failed (permissions, disk full)
* 75 — another sync holds the lock (EX_TEMPFAIL: try again later)
"""

from __future__ import annotations

EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_SOURCE = 3
EXIT_INSTALL = 4
EXIT_LOCKED = 75


def os_reason(exc: OSError) -> str:
    """Return the OS's short reason for ``exc`` (e.g. "Permission denied"), for a message."""
    return exc.strerror or str(exc)


class CronsyncError(Exception):
    """Base of every error cronsync reports to a user.

    Args:
        message: one line saying what went wrong and where.
    """

    exit_code = EXIT_PROBLEMS

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(CronsyncError):
    """The command line or the agent config is wrong."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The agent config file (agent.toml) is missing, unreadable or invalid."""


class ScheduleError(CronsyncError):
    """A cron schedule expression is invalid, never fires, or cannot be rendered."""


class SourceError(CronsyncError):
    """The git remote or local checkout could not give us the wanted commit."""

    exit_code = EXIT_SOURCE


class InstallError(CronsyncError):
    """Writing a release, the ``current`` link or the cron file failed."""

    exit_code = EXIT_INSTALL


class LockBusyError(CronsyncError):
    """Another process holds the lock we need (e.g. a sync is already running)."""

    exit_code = EXIT_LOCKED
