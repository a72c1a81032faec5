"""What a translation raises when a target cannot run a job exactly as cron would."""

from __future__ import annotations

from cronsync.core.errors import CronsyncError


class Unexportable(CronsyncError):
    """A job (or a field of it) the target cannot express exactly.

    Attributes:
        field: the job file's dotted field the reason is about ("schedule"), or "".
        message: why, for a person (no secret values: only names are ever quoted).
    """

    def __init__(self, message: str, field: str = "schedule") -> None:
        super().__init__(message)
        self.field = field
