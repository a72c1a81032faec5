"""Fetch a job's secrets for the shim: Secrets Manager, SSM Parameter Store, or a TOML file.

References come from jobs.json (``env``, ``store``, ``name``, ``key``). Fail closed: any
reference that cannot be resolved stops the job, and :class:`SecretsUnavailable` lists
every one with a short reason for the run record. Values never appear in a reason, a
message or a repr. boto3 is imported only for AWS references, tomllib only for the file.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from .awsclients import AwsSettings, make_client
from .errors import CronsyncError
from .model import SecretRef

SECRETS_MANAGER = "secretsmanager"
SSM = "ssm"
SSM_PREFIX = "ssm:"  # as in manifest (not imported: manifest pulls in tomllib)

NOT_FOUND = "not found"
ACCESS_DENIED = "access denied"
UNREACHABLE = "unreachable"
INVALID_VALUE = "invalid value"

# AWS error codes we translate; any other code is reported as it is (short, no value).
_CODE_REASONS = {
    "ResourceNotFoundException": NOT_FOUND,
    "ParameterNotFound": NOT_FOUND,
    "ParameterVersionNotFound": NOT_FOUND,
    "AccessDeniedException": ACCESS_DENIED,
    "DecryptionFailure": "cannot decrypt",
    "InvalidKeyId": "cannot decrypt",
}
_TOML_LINE = re.compile(r"at line (\d+)")


@dataclass(frozen=True)
class SecretFailure:
    """One reference that could not be resolved.

    Attributes:
        env: the variable the job would have received.
        reference: the reference as written ("batch-prod/db#password", "ssm:/x").
        reason: why, never a value ("not found", "access denied", "unreachable",
            "cannot decrypt", "not JSON", "no key 'k' in the secret", ...).
    """

    env: str
    reference: str
    reason: str

    def format(self) -> str:
        """Return ``ENV (reference): reason``."""
        return f"{self.env} ({self.reference}): {self.reason}"

    def as_dict(self) -> dict[str, str]:
        """Return the failure as a JSON-ready dict (for the run record)."""
        return {"env": self.env, "reference": self.reference, "reason": self.reason}


class SecretsUnavailable(CronsyncError):
    """At least one of a job's secrets could not be fetched; the job must not start.

    Args:
        failures: every reference that failed, in the job's order.
    """

    def __init__(self, failures: Sequence[SecretFailure]) -> None:
        self.failures = tuple(failures)
        noun = "secret" if len(self.failures) == 1 else "secrets"
        details = "; ".join(failure.format() for failure in self.failures)
        super().__init__(f"cannot fetch {len(self.failures)} {noun}: {details}")


class _Stored:
    """A fetched value (a string, or a parsed TOML table), with a repr that hides it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "_Stored(<hidden>)"


# What fetching one secret id gave: its stored value, or the reason it failed.
_Outcome = Union[_Stored, str]
_Key = tuple[str, str]  # (store, name)


def reference_text(ref: SecretRef) -> str:
    """Return a reference as a person wrote it: ``name#key`` or ``ssm:/path``."""
    prefix = SSM_PREFIX if ref.store == SSM else ""
    suffix = f"#{ref.key}" if ref.key is not None else ""
    return f"{prefix}{ref.name}{suffix}"


def fetch_secrets(
    refs: Sequence[Mapping[str, Any]],
    backend: str,
    *,
    file_template: str,
    user: str,
    aws: AwsSettings,
) -> dict[str, str]:
    """Fetch the values of a job's secret references.

    Args:
        refs: the job's ``secrets`` from jobs.json (``env``, ``store``, ``name``, ``key``).
        backend: ``"file"`` or ``"aws"``.
        file_template: the file backend's path, ``{user}`` standing for ``user``.
        user: the job's user.
        aws: where to reach AWS (aws backend only).

    Returns:
        Environment variable -> value, for every reference (empty for no references,
        without importing boto3 or tomllib).

    Raises:
        SecretsUnavailable: any reference failed; it lists every one that did.
    """
    parsed = [_parse_ref(raw) for raw in refs]
    wanted = {(ref.store, ref.name) for ref in parsed if isinstance(ref, SecretRef)}
    stored = _fetch(sorted(wanted), backend, file_template.replace("{user}", user), aws)
    values: dict[str, str] = {}
    failures: list[SecretFailure] = []
    for ref in parsed:
        if isinstance(ref, SecretFailure):
            failures.append(ref)
            continue
        outcome = _select(stored[(ref.store, ref.name)], ref.key)
        if isinstance(outcome, _Stored):
            values[ref.env] = outcome.value
        else:
            failures.append(SecretFailure(ref.env, reference_text(ref), outcome))
    if failures:
        raise SecretsUnavailable(failures)
    return values


def _parse_ref(raw: Mapping[str, Any]) -> Union[SecretRef, SecretFailure]:
    """Return the reference a jobs.json entry holds, or why it is unusable."""
    env, store, name, key = (raw.get(field) for field in ("env", "store", "name", "key"))
    if not isinstance(env, str) or not isinstance(name, str) or not name:
        return SecretFailure(str(env), str(name), "invalid reference")
    if key is not None and not isinstance(key, str):
        return SecretFailure(env, name, "invalid reference")
    ref = SecretRef(env, str(store), name, key)
    if store not in (SECRETS_MANAGER, SSM):
        return SecretFailure(env, reference_text(ref), f"unknown secret store {store!r}")
    return ref


def _fetch(wanted: list[_Key], backend: str, path: str, aws: AwsSettings) -> dict[_Key, _Outcome]:
    """Fetch each (store, name) once from ``backend``; nothing at all when none."""
    if not wanted:
        return {}
    if backend == "file":
        return _fetch_file(wanted, path)
    if backend == "aws":
        results: dict[_Key, _Outcome] = {}
        for store in (SECRETS_MANAGER, SSM):
            names = [name for kind, name in wanted if kind == store]
            if names:
                fetched = _fetch_aws_store(_AWS_STORES[store], names, aws)
                results.update(((store, name), outcome) for name, outcome in fetched.items())
        return results
    return dict.fromkeys(wanted, f"unknown secrets backend {backend!r}")


def _select(outcome: _Outcome, key: Optional[str]) -> _Outcome:
    """Return the env value a stored secret gives for ``key`` (None: the whole secret).

    A key indexes a table (file backend) or a string holding a JSON object.
    Non-string values become their JSON text.
    """
    if not isinstance(outcome, _Stored):
        return outcome
    value = outcome.value
    if key is not None:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                return "not JSON"
        if not isinstance(value, dict):
            return "not a JSON object"
        if key not in value:
            return f"no key {key!r} in the secret"
        value = value[key]
    return _env_value(value)


def _env_value(value: Any) -> _Outcome:
    """Return ``value`` as text an environment variable can hold, else "invalid value"."""
    if not isinstance(value, str):
        try:
            value = json.dumps(value)
        except (TypeError, ValueError):  # a TOML date, say
            return INVALID_VALUE
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return INVALID_VALUE
    if "\x00" in value:  # execve cannot pass it
        return INVALID_VALUE
    return _Stored(value)


# --- file backend ------------------------------------------------------------------


def _fetch_file(wanted: list[_Key], path: str) -> dict[_Key, _Outcome]:
    """Look each reference up in the TOML secrets file; SSM ones under ``ssm:NAME``."""
    doc = _read_secrets_file(path)
    if isinstance(doc, str):
        return dict.fromkeys(wanted, doc)
    results: dict[_Key, _Outcome] = {}
    for store, name in wanted:
        entry = SSM_PREFIX + name if store == SSM else name
        results[(store, name)] = _Stored(doc[entry]) if entry in doc else NOT_FOUND
    return results


def _read_secrets_file(path: str) -> Union[dict[str, Any], str]:
    """Return the parsed secrets file, or the reason it cannot be used.

    Refused unless it is a regular file owned by root or by us with no group/other
    permission bits (checked on the open descriptor, so it is the file we read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return f"secrets file {path} does not exist"
    except PermissionError:
        return f"secrets file {path} is not readable by uid {os.geteuid()}"
    except OSError as exc:
        return f"cannot open secrets file {path}: {exc.strerror}"
    with os.fdopen(fd, "rb") as handle:
        unsafe = _unsafe_file(path, os.fstat(fd))
        if unsafe:
            return unsafe
        try:
            data = handle.read()
        except OSError as exc:
            return f"cannot read secrets file {path}: {exc.strerror}"
    return _parse_secrets_toml(path, data)


def _unsafe_file(path: str, info: os.stat_result) -> Optional[str]:
    """Return why a secrets file must not be trusted, or None when it may."""
    if not stat.S_ISREG(info.st_mode):
        return f"secrets file {path} is not a regular file"
    uid = os.geteuid()
    if info.st_uid not in (0, uid):
        return f"secrets file {path} is owned by uid {info.st_uid}, not root or uid {uid}"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o044:
        return f"secrets file {path} is readable by group/others (chmod 600)"
    if mode & 0o033:
        return f"secrets file {path} has group/other permissions {mode:04o} (chmod 600)"
    return None


def _parse_secrets_toml(path: str, data: bytes) -> Union[dict[str, Any], str]:
    """Return the TOML document, or a reason naming at most a line (never content)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

    try:
        doc: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return f"secrets file {path} is not UTF-8"
    except tomllib.TOMLDecodeError as exc:
        line = _TOML_LINE.search(str(exc))
        where = f" (line {line.group(1)})" if line else ""
        return f"secrets file {path} is not valid TOML{where}"
    return doc


# --- AWS backend -------------------------------------------------------------------


@dataclass(frozen=True)
class _AwsStore:
    """How to fetch one store's ids: ``chunk`` at a time with ``batch`` (the client
    method ``batch_op``, absent on old botocore) returning the ids it settled, else
    one by one with ``single`` (both raise ClientError on a service error)."""

    service: str
    chunk: int
    batch_op: str
    batch: Callable[[Any, list[str]], dict[str, _Outcome]]
    single: Callable[[Any, str], _Outcome]


def _fetch_aws_store(store: _AwsStore, names: list[str], aws: AwsSettings) -> dict[str, _Outcome]:
    """Fetch ``names`` from one AWS store.

    A denied (or otherwise refused) batch call falls back to one call per id: an IAM
    policy may grant only the single-id action. A transport failure (unreachable, no
    credentials, no region) fails every id not yet settled with the same reason,
    rather than waiting out the timeouts once per id.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    results: dict[str, _Outcome] = {}
    try:
        client = make_client(store.service, aws)
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


def _sm_value(item: Mapping[str, Any]) -> _Outcome:
    """Return a Secrets Manager value: SecretString, or SecretBinary as UTF-8."""
    if isinstance(item.get("SecretString"), str):
        return _Stored(item["SecretString"])
    binary = item.get("SecretBinary")
    if isinstance(binary, bytes):
        try:
            return _Stored(binary.decode("utf-8"))
        except UnicodeDecodeError:
            return INVALID_VALUE
    return INVALID_VALUE


def _sm_batch(client: Any, ids: list[str]) -> dict[str, _Outcome]:
    """One BatchGetSecretValue call; ids neither returned nor in Errors are left out."""
    response = client.batch_get_secret_value(SecretIdList=ids)
    wanted = set(ids)
    results: dict[str, _Outcome] = {}
    for item in response.get("SecretValues", []):
        for ident in (item.get("Name"), item.get("ARN")):
            if ident in wanted:
                results[ident] = _sm_value(item)
    for error in response.get("Errors", []):
        ident = error.get("SecretId")
        if ident in wanted and ident not in results:
            results[ident] = _code_reason(error.get("ErrorCode"))
    return results


def _sm_single(client: Any, ident: str) -> _Outcome:
    """One GetSecretValue call."""
    return _sm_value(client.get_secret_value(SecretId=ident))


def _ssm_batch(client: Any, names: list[str]) -> dict[str, _Outcome]:
    """One GetParameters call (decrypted); InvalidParameters are "not found"."""
    response = client.get_parameters(Names=names, WithDecryption=True)
    wanted = set(names)
    results: dict[str, _Outcome] = {}
    for item in response.get("Parameters", []):
        name = item.get("Name")
        for ident in (name, item.get("ARN"), f"{name}{item.get('Selector') or ''}"):
            if ident in wanted:
                results[ident] = _ssm_value(item)
    for name in response.get("InvalidParameters", []):
        if name in wanted and name not in results:
            results[name] = NOT_FOUND
    return results


def _ssm_single(client: Any, name: str) -> _Outcome:
    """One GetParameter call (decrypted)."""
    return _ssm_value(client.get_parameter(Name=name, WithDecryption=True)["Parameter"])


def _ssm_value(item: Mapping[str, Any]) -> _Outcome:
    """Return a parameter's value (a StringList stays one comma-separated string)."""
    value = item.get("Value")
    return _Stored(value) if isinstance(value, str) else INVALID_VALUE


_AWS_STORES = {
    SECRETS_MANAGER: _AwsStore(
        SECRETS_MANAGER, 20, "batch_get_secret_value", _sm_batch, _sm_single
    ),
    SSM: _AwsStore("ssm", 10, "get_parameters", _ssm_batch, _ssm_single),
}
