"""Fetch a job's secrets from a named backend: Secrets Manager and SSM Parameter Store
(what the broker serves), or a TOML file (what the shim reads itself).

Resolving the references is :mod:`cronsync.secrets.resolve`'s; this module picks the
backend and imports it only when it is used (boto3 only for AWS references).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from cronsync.host.awsclients import AwsSettings
from cronsync.secrets.outcome import SECRETS_MANAGER, SSM, Key, Outcome
from cronsync.secrets.resolve import (
    SecretFailure,
    SecretsUnavailable,
    reference_text,
    resolve_secrets,
)

if TYPE_CHECKING:
    from cronsync.secrets.aws import ClientSource

__all__ = ["SecretFailure", "SecretsUnavailable", "fetch_secrets", "reference_text"]


def fetch_secrets(
    refs: Sequence[Mapping[str, Any]],
    backend: str,
    *,
    file_template: str,
    user: str,
    aws: AwsSettings,
    clients: Optional[ClientSource] = None,
) -> dict[str, str]:
    """Fetch the values of a job's secret references.

    Args:
        refs: the job's ``secrets`` from jobs.json (``env``, ``store``, ``name``, ``key``).
        backend: ``"file"`` or ``"aws"``.
        file_template: the file backend's path, ``{user}`` standing for ``user``.
        user: the job's user.
        aws: where to reach AWS (aws backend only).
        clients: where AWS clients come from (None: new ones from ``aws``; the broker
            passes its warm ones).

    Returns:
        Environment variable -> value, for every reference (empty for no references,
        without importing boto3 or tomllib).

    Raises:
        SecretsUnavailable: any reference failed; it lists every one that did.
    """
    path = file_template.replace("{user}", user)
    return resolve_secrets(refs, lambda wanted: _fetch(wanted, backend, path, aws, clients))


def _fetch(
    wanted: list[Key],
    backend: str,
    path: str,
    aws: AwsSettings,
    clients: Optional[ClientSource] = None,
) -> dict[Key, Outcome]:
    """Fetch each (store, name) once from ``backend`` (called only with some ids).

    Each backend's module is imported only when it is used.
    """
    if backend == "file":
        from cronsync.secrets.file import fetch_file

        return fetch_file(wanted, path)
    if backend == "aws":
        from cronsync.secrets.aws import AWS_STORES, fetch_aws_store

        results: dict[Key, Outcome] = {}
        for store in (SECRETS_MANAGER, SSM):
            names = [name for kind, name in wanted if kind == store]
            if names:
                fetched = fetch_aws_store(AWS_STORES[store], names, aws, clients)
                results.update(((store, name), outcome) for name, outcome in fetched.items())
        return results
    return dict.fromkeys(wanted, f"unknown secrets backend {backend!r}")
