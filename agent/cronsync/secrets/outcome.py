"""What a secret backend gives back for one secret id: the stored value (hidden in every
repr) or the short reason it failed, and the names of the stores and of the reasons.

Shared by :mod:`cronsync.secrets.fetch` and the backends (:mod:`cronsync.secrets.file`,
:mod:`cronsync.secrets.aws`), which is why it lives below them.
"""

from __future__ import annotations

from typing import Any, Union

SECRETS_MANAGER = "secretsmanager"
SSM = "ssm"
SSM_PREFIX = "ssm:"  # as in manifest (not imported: manifest pulls in tomllib)

NOT_FOUND = "not found"
ACCESS_DENIED = "access denied"
UNREACHABLE = "unreachable"
INVALID_VALUE = "invalid value"


class Stored:
    """A fetched value (a string, or a parsed TOML table), with a repr that hides it.

    Args:
        value: what the backend returned for one secret id.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Stored(<hidden>)"


# What fetching one secret id gave: its stored value, or the reason it failed
# (what every backend returns for each id).
Outcome = Union[Stored, str]
Key = tuple[str, str]  # (store, name): one secret id of one store
