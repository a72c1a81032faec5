"""agent.toml's signed-commit keys: ``[repo] require_signed``, ``allowed_signers``, ``gpg_home``.

:func:`signing_problems` is the logical check on top of the schema (absolute paths, and
no trust set configured for a format that is not required: an operator who wrote
``allowed_signers`` but not ``require_signed`` would believe commits are checked);
:func:`trust_set` builds the :class:`~cronsync.core.signing.TrustSet` the sync checks
against. Whether the file or folder is there and trustworthy is checked at every sync,
when git reads it (:func:`cronsync.repo.signature.check_trust_set`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from cronsync.core.model import Problem
from cronsync.core.signing import GPG, SSH, TrustSet
from cronsync.core.tomlcheck import Located

DEFAULT_ALLOWED_SIGNERS = "/etc/cronsync/allowed_signers"
DEFAULT_GPG_HOME = "/etc/cronsync/gnupg"
# key of the trust set -> the format it serves, and its default
_TRUST_KEYS = {
    "allowed_signers": (SSH, DEFAULT_ALLOWED_SIGNERS),
    "gpg_home": (GPG, DEFAULT_GPG_HOME),
}


def signing_problems(doc: Located, data: Mapping[str, Any]) -> list[Problem]:
    """Check the signed-commit keys of a schema-checked agent.toml.

    Returns:
        One located Problem per bad key: a relative path or one with control
        characters, or a trust set given for a format ``require_signed`` does not name.
    """
    repo = data.get("repo", {})
    required = repo.get("require_signed")
    problems = []
    for key, (fmt, _) in _TRUST_KEYS.items():
        value = repo.get(key)
        if value is None:
            continue
        if not value.startswith("/") or any(ord(char) < 32 or char == "\x7f" for char in value):
            problems.append(doc.problem(f"repo.{key}", f"{value!r} is not an absolute path"))
        elif required != fmt:
            problems.append(
                doc.problem(
                    f"repo.{key}",
                    f'set, but repo.require_signed is not "{fmt}": commits would not be '
                    f'checked against it (add require_signed = "{fmt}", or remove it)',
                )
            )
    return problems


def trust_set(config_path: Path, data: Mapping[str, Any], root: Path) -> Optional[TrustSet]:
    """The trust set a sync checks the tip's signature against (None: not required).

    Args:
        config_path: agent.toml (named in messages about the trust set).
        data: the checked document (see :func:`signing_problems`).
        root: ``paths.root``; the trust set's path hangs off it.
    """
    repo = data.get("repo", {})
    required = repo.get("require_signed")
    if required is None:
        return None
    key, default = next(
        (key, default) for key, (fmt, default) in _TRUST_KEYS.items() if fmt == required
    )
    path = root / str(repo.get(key, default)).lstrip("/")
    return TrustSet(required, str(path), f"{config_path}: repo.{key}")
