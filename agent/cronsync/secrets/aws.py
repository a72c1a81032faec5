"""The shim's AWS secrets backend: Secrets Manager and SSM Parameter Store.

Batched calls (BatchGetSecretValue, GetParameters) with a fallback to one call per id;
AWS errors become short reasons, never values. botocore is imported only when a store
is fetched. :mod:`cronsync.secrets.fetch` resolves the references.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from cronsync.host.awsclients import AwsSettings, CredentialsFileError, make_client
from cronsync.secrets.outcome import (
    ACCESS_DENIED,
    INVALID_VALUE,
    NOT_FOUND,
    SECRETS_MANAGER,
    SSM,
    UNREACHABLE,
    Outcome,
    Stored,
)

# AWS error codes we translate; any other code is reported as it is (short, no value).
_CODE_REASONS = {
    "ResourceNotFoundException": NOT_FOUND,
    "ParameterNotFound": NOT_FOUND,
    "ParameterVersionNotFound": NOT_FOUND,
    "AccessDeniedException": ACCESS_DENIED,
    "DecryptionFailure": "cannot decrypt",
    "InvalidKeyId": "cannot decrypt",
}


@dataclass(frozen=True)
class AwsStore:
    """How to fetch one store's ids: ``chunk`` at a time with ``batch`` (the client
    method ``batch_op``, absent on old botocore) returning the ids it settled, else
    one by one with ``single`` (both raise ClientError on a service error)."""

    service: str
    chunk: int
    batch_op: str
    batch: Callable[[Any, list[str]], dict[str, Outcome]]
    single: Callable[[Any, str], Outcome]


# Makes (or hands out a warm) client for a service name: the broker keeps one per service.
ClientSource = Callable[[str], Any]


def fetch_aws_store(
    store: AwsStore, names: list[str], aws: AwsSettings, clients: Optional[ClientSource] = None
) -> dict[str, Outcome]:
    """Fetch ``names`` from one AWS store.

    A denied (or otherwise refused) batch call falls back to one call per id: an IAM
    policy may grant only the single-id action. A transport failure (unreachable, no
    credentials, no region) fails every id not yet settled with the same reason,
    rather than waiting out the timeouts once per id.

    Args:
        store: how to fetch the store's ids (one of :data:`AWS_STORES`).
        names: the ids (names or ARNs) to fetch.
        aws: where to reach AWS.
        clients: where the client comes from (None: a new one from ``aws``).

    Returns:
        Each id's stored value, or the reason it failed.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    results: dict[str, Outcome] = {}
    try:
        client = clients(store.service) if clients else make_client(store.service, aws)
        use_batch = hasattr(client, store.batch_op)
        for start in range(0, len(names), store.chunk):
            chunk = names[start : start + store.chunk]
            if use_batch:
                try:
                    results.update(store.batch(client, chunk))
                except ClientError:
                    use_batch = False
            for name in (name for name in chunk if name not in results):
                try:
                    results[name] = store.single(client, name)
                except ClientError as exc:
                    results[name] = _code_reason(exc.response.get("Error", {}).get("Code"))
    except BotoCoreError as exc:
        reason = _transport_reason(exc)
        results.update((name, reason) for name in names if name not in results)
    except CredentialsFileError as exc:  # the host's credentials file was refused
        results.update((name, exc.message) for name in names if name not in results)
    return results


def _transport_reason(exc: Exception) -> str:
    """Return the reason a botocore (non-service) error gives every pending id."""
    from botocore import exceptions as boto

    if isinstance(exc, boto.NoCredentialsError):
        return "no AWS credentials"
    if isinstance(exc, boto.NoRegionError):
        return "no AWS region configured"
    if isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)):
        return UNREACHABLE
    return type(exc).__name__


def _code_reason(code: Any) -> str:
    """Return our reason for an AWS error code."""
    return _CODE_REASONS.get(str(code), str(code or "error"))


def _sm_value(item: Mapping[str, Any]) -> Outcome:
    """Return a Secrets Manager value: SecretString, or SecretBinary as UTF-8."""
    if isinstance(item.get("SecretString"), str):
        return Stored(item["SecretString"])
    binary = item.get("SecretBinary")
    if isinstance(binary, bytes):
        try:
            return Stored(binary.decode("utf-8"))
        except UnicodeDecodeError:
            return INVALID_VALUE
    return INVALID_VALUE


def _sm_batch(client: Any, ids: list[str]) -> dict[str, Outcome]:
    """One BatchGetSecretValue call; ids neither returned nor in Errors are left out."""
    response = client.batch_get_secret_value(SecretIdList=ids)
    wanted = set(ids)
    results: dict[str, Outcome] = {}
    for item in response.get("SecretValues", []):
        for ident in (item.get("Name"), item.get("ARN")):
            if ident in wanted:
                results[ident] = _sm_value(item)
    for error in response.get("Errors", []):
        ident = error.get("SecretId")
        if ident in wanted and ident not in results:
            results[ident] = _code_reason(error.get("ErrorCode"))
    return results


def _sm_single(client: Any, ident: str) -> Outcome:
    """One GetSecretValue call."""
    return _sm_value(client.get_secret_value(SecretId=ident))


def _ssm_batch(client: Any, names: list[str]) -> dict[str, Outcome]:
    """One GetParameters call (decrypted); InvalidParameters are "not found"."""
    response = client.get_parameters(Names=names, WithDecryption=True)
    wanted = set(names)
    results: dict[str, Outcome] = {}
    for item in response.get("Parameters", []):
        name = item.get("Name")
        for ident in (name, item.get("ARN"), f"{name}{item.get('Selector') or ''}"):
            if ident in wanted:
                results[ident] = _ssm_value(item)
    for name in response.get("InvalidParameters", []):
        if name in wanted and name not in results:
            results[name] = NOT_FOUND
    return results


def _ssm_single(client: Any, name: str) -> Outcome:
    """One GetParameter call (decrypted)."""
    return _ssm_value(client.get_parameter(Name=name, WithDecryption=True)["Parameter"])


def _ssm_value(item: Mapping[str, Any]) -> Outcome:
    """Return a parameter's value (a StringList stays one comma-separated string)."""
    value = item.get("Value")
    return Stored(value) if isinstance(value, str) else INVALID_VALUE


AWS_STORES = {
    SECRETS_MANAGER: AwsStore(SECRETS_MANAGER, 20, "batch_get_secret_value", _sm_batch, _sm_single),
    SSM: AwsStore("ssm", 10, "get_parameters", _ssm_batch, _ssm_single),
}
