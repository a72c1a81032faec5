"""boto3 clients made from the host's ``[aws]`` settings (the only module that imports
boto3, and only when a client is asked for: importing it costs ~200 ms).

Credentials and region come from the standard AWS chain (the instance role on EC2);
``[aws]`` in agent.toml can name a region, an endpoint (VPC endpoints, tests) and a
shared credentials file (hosts outside AWS), read by :func:`file_credentials` only
when every folder on its way and the file itself are root's and nobody else's.
Clients fail fast: short connect and read timeouts and few retries, so an unreachable
AWS never stalls a job for long; metrics, which are only worth anything when they are
on time, ask for shorter ones still (:data:`METRICS_TIMEOUTS`: one attempt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Optional

from cronsync.core.errors import ConfigError
from cronsync.files.trusted import UntrustedFile, read_trusted_file


@dataclass(frozen=True)
class AwsSettings:
    """Where and how to reach AWS.

    Attributes:
        region: region name, or None for the standard chain.
        endpoint_url: one endpoint for every service (a VPC endpoint, a test server),
            or None for AWS's own.
        credentials_file: a shared credentials file, or None for the standard chain.
        connect_timeout, read_timeout: seconds.
        max_attempts: total attempts per call (botocore's standard retry mode).
    """

    region: Optional[str] = None
    endpoint_url: Optional[str] = None
    credentials_file: Optional[str] = None
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_attempts: int = 3

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AwsSettings:
        """Build from the ``aws`` table of compiled settings (unknown keys ignored)."""
        return cls(
            region=data.get("region") or None,
            endpoint_url=data.get("endpoint_url") or None,
            credentials_file=data.get("credentials_file") or None,
        )

    def with_timeouts(self, timeouts: Timeouts) -> AwsSettings:
        """The same place and credentials with other timeouts and attempts."""
        return replace(
            self,
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            max_attempts=timeouts.max_attempts,
        )


@dataclass(frozen=True)
class Timeouts:
    """How long one call may wait: connect and read timeouts (seconds), attempts."""

    connect: float
    read: float
    max_attempts: int


# A metric is cheap to lose and must never hold up what reports it (a job's shim, the
# agent's loop): at most ~5 s per call, never retried.
METRICS_TIMEOUTS = Timeouts(connect=2.0, read=3.0, max_attempts=1)


def make_client(
    service: str,
    settings: AwsSettings,
    *,
    validate: bool = True,
    timeouts: Optional[Timeouts] = None,
) -> Any:
    """Return a boto3 client for ``service`` (e.g. ``"logs"``, ``"secretsmanager"``).

    ``validate=False`` skips botocore's client-side check of every parameter, for
    callers that build requests already checked (the log batcher: half its CPU).
    ``timeouts`` overrides the settings' timeouts and attempts (metrics pass
    :data:`METRICS_TIMEOUTS`).

    Raises:
        CredentialsFileError: ``credentials_file`` is set and refused or unreadable.
        botocore raises when no region can be found (``NoRegionError``) — callers
        translate it at their edge.
    """
    import boto3
    import botocore.session
    from botocore.config import Config

    if timeouts is not None:
        settings = settings.with_timeouts(timeouts)
    core = botocore.session.get_session()
    keys = file_credentials(settings.credentials_file) if settings.credentials_file else {}
    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        parameter_validation=validate,
    )
    # the keys go on the session, never into os.environ (jobs would inherit them)
    session = boto3.session.Session(botocore_session=core, region_name=settings.region, **keys)
    return session.client(service, endpoint_url=settings.endpoint_url, config=config)


class CredentialsFileError(ConfigError):
    """``aws.credentials_file`` cannot be used (the text says why, never a key)."""


PROFILE = "default"


def file_credentials(path: str) -> dict[str, str]:
    """Read the static keys of the ``[default]`` profile of a credentials file, after
    checking that only root (or this user) could have written it or the folders on its
    way (:func:`cronsync.files.trusted.read_trusted_file`), at every use: a file swapped
    after the agent config was read is refused too.

    Returns:
        ``aws_access_key_id``, ``aws_secret_access_key`` and, when present,
        ``aws_session_token``.

    Raises:
        CredentialsFileError: refused, missing, unreadable, or without the two keys.
    """
    import configparser

    where = f"aws.credentials_file {path}"
    try:
        data = read_trusted_file(path)
    except UntrustedFile as exc:
        raise CredentialsFileError(f"{where} refused: {exc}") from exc
    except FileNotFoundError as exc:
        raise CredentialsFileError(f"{where} does not exist") from exc
    except OSError as exc:
        raise CredentialsFileError(f"cannot read {where}: {exc.strerror or exc}") from exc
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(data.decode("utf-8"))
        section = parser[PROFILE]
        keys = {
            name: section[name].strip()
            for name in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
            if section.get(name, "").strip()
        }
    except (UnicodeDecodeError, configparser.Error, KeyError) as exc:
        raise CredentialsFileError(
            f"{where} is not a credentials file with a [{PROFILE}] profile"
        ) from exc
    if "aws_access_key_id" not in keys or "aws_secret_access_key" not in keys:
        raise CredentialsFileError(
            f"{where}: [{PROFILE}] needs aws_access_key_id and aws_secret_access_key"
        )
    return keys
