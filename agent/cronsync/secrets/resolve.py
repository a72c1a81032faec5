"""Resolve a job's secret references into environment values, given a backend.

References come from jobs.json (``env``, ``store``, ``name``, ``key``). Fail closed: any
reference that cannot be resolved stops the job, and :class:`SecretsUnavailable` lists
every one with a short reason for the run record. Values never appear in a reason, a
message or a repr. The backend is a function from secret ids to outcomes: the shim
passes the file backend (:mod:`cronsync.secrets.file`), the broker the AWS ones through
:mod:`cronsync.secrets.fetch`. Nothing here imports an AWS library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from cronsync.core import fastjson
from cronsync.core.errors import CronsyncError
from cronsync.core.model import SecretRef
from cronsync.secrets.outcome import (
    INVALID_VALUE,
    SECRETS_MANAGER,
    SSM,
    SSM_PREFIX,
    Key,
    Outcome,
    Stored,
)

# A backend: fetches each (store, name) id once and says what it gave.
Fetcher = Callable[[list[Key]], dict[Key, Outcome]]


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


def reference_text(ref: SecretRef) -> str:
    """Return a reference as a person wrote it: ``name#key`` or ``ssm:/path``."""
    prefix = SSM_PREFIX if ref.store == SSM else ""
    suffix = f"#{ref.key}" if ref.key is not None else ""
    return f"{prefix}{ref.name}{suffix}"


def resolve_secrets(refs: Sequence[Mapping[str, Any]], fetch: Fetcher) -> dict[str, str]:
    """Resolve a job's secret references with the backend ``fetch``.

    Args:
        refs: the job's ``secrets`` from jobs.json (``env``, ``store``, ``name``, ``key``).
        fetch: the backend (called once, with every distinct id; not at all for none).

    Returns:
        Environment variable -> value, for every reference.

    Raises:
        SecretsUnavailable: any reference failed; it lists every one that did.
    """
    parsed = [_parse_ref(raw) for raw in refs]
    wanted = {(ref.store, ref.name) for ref in parsed if isinstance(ref, SecretRef)}
    stored = fetch(sorted(wanted)) if wanted else {}
    values: dict[str, str] = {}
    failures: list[SecretFailure] = []
    for ref in parsed:
        if isinstance(ref, SecretFailure):
            failures.append(ref)
            continue
        outcome = _select(stored.get((ref.store, ref.name), "not fetched"), ref.key)
        if isinstance(outcome, Stored):
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


def _select(outcome: Outcome, key: Optional[str]) -> Outcome:
    """Return the env value a stored secret gives for ``key`` (None: the whole secret).

    A key indexes a table (file backend) or a string holding a JSON object.
    Non-string values become their JSON text.
    """
    if not isinstance(outcome, Stored):
        return outcome
    value = outcome.value
    if key is not None:
        if isinstance(value, str):
            try:
                value = fastjson.loads(value)
            except (ValueError, RecursionError):
                return "not JSON"
        if not isinstance(value, dict):
            return "not a JSON object"
        if key not in value:
            return f"no key {key!r} in the secret"
        value = value[key]
    return _env_value(value)


def _env_value(value: Any) -> Outcome:
    """Return ``value`` as text an environment variable can hold, else "invalid value"."""
    if not isinstance(value, str):
        import json  # rare (a table or number in a secrets file), so not at start-up

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
    return Stored(value)
