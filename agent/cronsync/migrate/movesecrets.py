"""Store the secrets ``cronsync import`` moved out: a 0600 TOML file or Secrets Manager.

Each name is checked before anything is stored: a secret that already holds the same
value is left as it is, one that holds another value (another import's) is never
overwritten. Secret values never show in a message.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from cronsync.core.errors import EXIT_INSTALL, CronsyncError, UsageError
from cronsync.files.atomic import atomic_write
from cronsync.host.awsclients import AwsSettings, make_client
from cronsync.migrate.importmodel import MovedSecret
from cronsync.migrate.jobwriter import render_secrets

USER_PLACEHOLDER = "{user}"


class SecretsNotStored(CronsyncError):
    """The moved-out secrets could not be stored (nothing was written to the repository)."""

    exit_code = EXIT_INSTALL


def _read_existing(path: Path) -> dict[str, str]:
    """Return the entries of an existing secrets file (kept when merging).

    Raises:
        UsageError: it is not a regular file, is readable by others, is not TOML, or
            holds entries other than strings (a merge would drop them).
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        return {}
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} exists and is not a regular file")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise UsageError(f"{path} exists and is readable by others: chmod 600 it or pick another")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path} exists and is not a readable secrets file") from exc
    tables = sorted(k for k, v in data.items() if not isinstance(v, str))
    if tables:
        raise UsageError(
            f"{path} holds entries that are not plain values ({', '.join(tables[:3])}): "
            "an import would drop them; pass another --secrets-file"
        )
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _conflict(where: str, reference: str, remedy: str) -> SecretsNotStored:
    """The refusal to overwrite ``reference`` (named, its value never shown)."""
    return SecretsNotStored(
        f"{where} already holds the secret {reference} with another value (another "
        f"import's?): nothing was overwritten or written; pass --secret-prefix PREFIX (one "
        f"per host) or {remedy}"
    )


def write_secrets_files(template: Path, secrets: Mapping[str, MovedSecret]) -> list[Path]:
    """Write the values in the file backend's format, mode 0600 (merged into an existing
    file: entries of other imports are kept). ``{user}`` in ``template`` gives one file
    per user with the references that user's jobs read.

    Every file is read and checked before any is written.

    Returns:
        the files written.
    Raises:
        UsageError: an existing file cannot be merged into (see :func:`_read_existing`).
        SecretsNotStored: an existing file holds one of the names with another value.
    """
    per_user = USER_PLACEHOLDER in str(template)
    groups: dict[Path, list[MovedSecret]] = {}
    for secret in sorted(secrets.values(), key=lambda s: s.reference):
        users = sorted(secret.users) if per_user else [""]
        for user in users:
            path = Path(str(template).replace(USER_PLACEHOLDER, user))
            groups.setdefault(path, []).append(secret)
    merged: dict[Path, dict[str, str]] = {}
    for path, items in groups.items():
        entries = _read_existing(path)
        for secret in items:
            if entries.get(secret.reference, secret.value) != secret.value:
                raise _conflict(f"{path}", secret.reference, "another --secrets-file")
            entries[secret.reference] = secret.value
        merged[path] = entries
    header = [
        "Secrets moved out of crontabs by `cronsync import`. Keep this file private",
        "(mode 0600) and out of every repository; delete it once the values are in place.",
    ]
    for path, entries in merged.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, render_secrets(sorted(entries.items()), header).encode(), mode=0o600)
    return sorted(groups)


def create_aws_secrets(secrets: Mapping[str, MovedSecret], aws: AwsSettings) -> None:
    """Store each value in Secrets Manager (CreateSecret), after checking every name:
    a secret that already holds the same value is left as it is, one that holds another
    value is never overwritten.

    Raises:
        SecretsNotStored: a name already holds another value (nothing created), or AWS
            refused or could not be reached (the message names the reference, never
            the value).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    where = ""
    try:
        client = make_client("secretsmanager", aws)
        missing = []
        for reference, secret in sorted(secrets.items()):
            where = f" ({reference})"
            exists, current = _current_value(client, reference, ClientError)
            if not exists:
                missing.append((reference, secret.value))
            elif current != secret.value:
                raise _conflict("Secrets Manager", reference, "delete that secret if unused")
        for reference, value in missing:
            where = f" ({reference})"
            client.create_secret(
                Name=reference,
                SecretString=value,
                Description="moved out of a crontab by cronsync import",
            )
    except (BotoCoreError, ClientError) as exc:
        error = getattr(exc, "response", {}).get("Error", {})
        reason = error.get("Code") or type(exc).__name__
        # from None: botocore's message may quote the request; the value must not show
        raise SecretsNotStored(
            f"cannot store the secrets in Secrets Manager{where}: {reason}"
        ) from None


def _current_value(
    client: Any, reference: str, client_error: type[Exception]
) -> tuple[bool, Optional[str]]:
    """Return whether a secret exists and its current text (None when it is binary).

    Raises:
        client_error: AWS refused the read for another reason than a missing secret.
    """
    try:
        found = client.get_secret_value(SecretId=reference)
    except client_error as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":
            return False, None
        raise
    value = found.get("SecretString")
    return True, value if isinstance(value, str) else None
