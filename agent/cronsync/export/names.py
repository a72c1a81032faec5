"""Names in the target's rules: CronJob names, Kubernetes Secrets, CloudFormation ids (pure).

* A job's CronJob name is its name with ``_`` written ``-`` (DNS-1123 label), at most
  52 characters (Kubernetes adds 11 to name each Job); a longer name keeps its first
  43 characters and adds ``-`` and 8 hex digits of its SHA-256.
* A secret reference becomes a key of a Kubernetes Secret: a Secrets Manager secret
  ``NAME`` is the Secret ``dns(NAME)``, an SSM parameter ``/a/b`` is ``ssm-a-b``;
  ``dns`` lower-cases and writes each run of characters a Secret name cannot hold as
  ``-``. The key is the JSON key for ``{ secret, key }``, else ``value``.
* Two jobs (or two references) that land on one name are refused, never merged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from cronsync.core.model import SecretRef
from cronsync.export.refusal import Unexportable

CRONJOB_NAME_MAX = 52
SECRET_NAME_MAX = 253
WHOLE_SECRET_KEY = "value"  # noqa: S105 (a key name, not a secret)
_NOT_DNS = re.compile(r"[^a-z0-9.-]+")
_NOT_KEY = re.compile(r"[^-._a-zA-Z0-9]+")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def cronjob_name(job_name: str) -> str:
    """Return the CronJob name of a job (see the module docstring).

    Args:
        job_name: a valid cronsync job name (``[a-z][a-z0-9_-]{0,63}``).
    Returns:
        a DNS-1123 label of at most 52 characters.
    """
    name = job_name.replace("_", "-").strip("-")
    if len(name) <= CRONJOB_NAME_MAX:
        return name
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    return f"{name[: CRONJOB_NAME_MAX - 9].rstrip('-')}-{digest}"


def unique_names(names: Mapping[str, str], what: str) -> dict[str, str]:
    """Check that no two sources map to one target name.

    Args:
        names: source (a job name, a secret reference) -> its target name.
        what: what the targets are, for the message ("CronJob name").
    Returns:
        ``names`` as a dict.
    Raises:
        Unexportable: two sources share a target; the message names both.
    """
    seen: dict[str, str] = {}
    for source, target in sorted(names.items()):
        if target in seen:
            raise Unexportable(
                f"{seen[target]!r} and {source!r} would both be the {what} {target!r}; rename one",
                field="",
            )
        seen[target] = source
    return dict(names)


def secret_target(ref: SecretRef) -> tuple[str, str]:
    """Return the Kubernetes ``(Secret name, key)`` a reference reads (never a value).

    Raises:
        Unexportable: the name leaves nothing a Secret name can hold.
    """
    raw = ("ssm-" + ref.name.lstrip("/")) if ref.store == "ssm" else ref.name
    name = _NOT_DNS.sub("-", raw.lower()).strip("-.")[:SECRET_NAME_MAX].rstrip("-.")
    if not name:
        raise Unexportable(f"secret {ref.name!r} has no characters a Secret name can use")
    key = _NOT_KEY.sub("_", ref.key) if ref.key is not None else WHOLE_SECRET_KEY
    return name, key


def source_of(ref: SecretRef) -> str:
    """How the docs and the export's list name a reference: ``ssm:/a/b``,
    ``NAME`` or ``NAME#key``."""
    where = f"ssm:{ref.name}" if ref.store == "ssm" else ref.name
    return where if ref.key is None else f"{where}#{ref.key}"


def secret_mapping(refs: Iterable[SecretRef]) -> dict[str, tuple[str, str]]:
    """Map every distinct reference to its ``(Secret, key)``.

    Raises:
        Unexportable: two different references land on one Secret key.
    """
    mapping = {source_of(ref): secret_target(ref) for ref in refs}
    joined = {source: f"{name}/{key}" for source, (name, key) in mapping.items()}
    unique_names(joined, "Kubernetes Secret key")
    return mapping


def logical_id(prefix: str, job_name: str, taken: Iterable[str]) -> str:
    """A CloudFormation logical id (alphanumeric) for a job's resource, unique in ``taken``.

    Args:
        prefix: e.g. ``"Schedule"``.
        job_name: the job's name; ``-``/``_`` start a capital (``nightly-aggregate`` ->
            ``NightlyAggregate``).
        taken: ids already used.
    Returns:
        ``prefix`` + the name in CamelCase, plus 8 hex digits of its SHA-256 if taken.
    """
    camel = "".join(part[:1].upper() + part[1:] for part in _NOT_ALNUM.split(job_name))
    candidate = prefix + camel
    if candidate in set(taken):
        candidate += hashlib.sha256(job_name.encode()).hexdigest()[:8]
    return candidate
