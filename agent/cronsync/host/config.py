"""The host's agent config (``/etc/cronsync/agent.toml``) and the paths it implies.

Every host path hangs off ``paths.root`` (default ``/``), so the whole agent runs
unprivileged in a sandbox directory for the demo and the tests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from cronsync.core.agentschema import AGENT_FIELDS
from cronsync.core.durations import parse_duration
from cronsync.core.errors import ConfigError
from cronsync.core.model import HostContext, Problem
from cronsync.core.signing import TrustSet
from cronsync.core.tomlcheck import Located, check_table, parse_toml
from cronsync.core.validate import is_known_zone
from cronsync.host.awsclients import AwsSettings, CredentialsFileError, file_credentials
from cronsync.host.hostinfo import detect_host_name, detect_host_timezone
from cronsync.host.signingconfig import signing_problems, trust_set

DEFAULT_CONFIG = Path("/etc/cronsync/agent.toml")
MAX_CONFIG_BYTES = 1024 * 1024
CONFIG_ENV = "CRONSYNC_CONFIG"
CRON_DIR = "/etc/cron.d"
DEFAULT_CRON_FILE = "/etc/cron.d/cronsync"
DEFAULT_BROKER_SOCKET = "/run/cronsync/broker.sock"
DEFAULT_METADATA_ENDPOINT = "169.254.169.254:80"
HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")
CRON_FILE_NAME = re.compile(r"[A-Za-z0-9_-]+")
BRANCH_NAME = re.compile(r"(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]+(?<![./])")
SHIM_PATH = re.compile(r"/[A-Za-z0-9._/+-]+")


@dataclass(frozen=True)
class Paths:
    """Where cronsync keeps everything on one host (all below ``root``)."""

    root: Path
    cron_file: Path

    @property
    def state_dir(self) -> Path:
        """``/var/lib/cronsync``: checkout, releases, ``current``, state."""
        return self.root / "var/lib/cronsync"

    @property
    def checkout(self) -> Path:
        """The agent's git checkout."""
        return self.state_dir / "repo"

    @property
    def releases(self) -> Path:
        """Immutable exports of commits, one directory each."""
        return self.state_dir / "releases"

    @property
    def current(self) -> Path:
        """Symlink to the installed release; the shim reads only this."""
        return self.state_dir / "current"

    @property
    def state_file(self) -> Path:
        """Sync history, last-known-good and drift findings (JSON)."""
        return self.state_dir / "state.json"

    @property
    def sync_lock(self) -> Path:
        """Held for the whole of a sync, so two never overlap."""
        return self.state_dir / "sync.lock"

    @property
    def runs_dir(self) -> Path:
        """Run records and CloudWatch delivery state, a directory per job."""
        return self.state_dir / "runs"

    @property
    def log_dir(self) -> Path:
        """``/var/log/cronsync``."""
        return self.root / "var/log/cronsync"


@dataclass(frozen=True)
class RunSettings:
    """How cronsync-run runs this host's jobs (compiled into every release's jobs.json).

    Attributes:
        secrets_backend: ``file`` or ``aws``.
        secrets_file: the file backend's path template (``{user}``), below the root.
        logs_cloudwatch: forward output to CloudWatch Logs.
        keep_runs: run records and logs kept per job.
        keep_days: local logs older than this are removed.
        metrics_cloudwatch: publish job metrics.
        aws: how to reach AWS.
        kill_grace_seconds: TERM-to-KILL delay after a timeout.
    """

    secrets_backend: str = "file"
    secrets_file: str = "/etc/cronsync/secrets.d/{user}.toml"
    logs_cloudwatch: bool = False
    keep_runs: int = 100
    keep_days: int = 30
    metrics_cloudwatch: bool = False
    aws: AwsSettings = field(default_factory=AwsSettings)
    kill_grace_seconds: int = 30


@dataclass(frozen=True)
class AgentSettings:
    """The pace of ``cronsync agent`` (seconds)."""

    interval: int = 60
    splay: int = 10
    max_backoff: int = 900
    full_check: int = 600


@dataclass(frozen=True)
class BrokerSettings:
    """The broker: its socket (below the root) and a socket-activated broker's idle
    time before it exits (seconds)."""

    socket: Path = Path(DEFAULT_BROKER_SOCKET)
    idle_exit: int = 300


@dataclass(frozen=True)
class FleetSettings:
    """``[fleet]``: the DynamoDB table shared by a fleet's hosts (None: no fleet) and
    how long a lease holds without renewal (seconds)."""

    table: Optional[str] = None
    lease_ttl: int = 300


@dataclass(frozen=True)
class AgentConfig:
    """The parsed agent config of one host."""

    path: Path
    repo_url: str
    branch: str
    host: HostContext
    users_must_exist: bool
    shim: str
    keep_releases: int
    git_timeout_seconds: int
    drift_policy: str
    paths: Paths
    run: RunSettings = field(default_factory=RunSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    metadata_endpoint: str = DEFAULT_METADATA_ENDPOINT
    signing: Optional[TrustSet] = None  # [repo] require_signed: the tip's trust set


def config_path(explicit: Optional[str]) -> Path:
    """Return the config file to use: ``--config``, else ``$CRONSYNC_CONFIG``, else
    ``/etc/cronsync/agent.toml``."""
    chosen = explicit or os.environ.get(CONFIG_ENV)
    return Path(chosen) if chosen else DEFAULT_CONFIG


def is_relative_path(url: str) -> bool:
    """Whether a ``repo.url`` is a local path relative to the current folder.

    Args:
        url: the configured remote, as git would read it.

    Returns:
        False for an absolute path, a URL (``scheme://...``), a remote helper address
        (``transport::address``) and an scp-like ``[user@]host:path`` (git's rule: a
        colon before the first slash); True for anything else (``../jobs.git``,
        ``jobs``, ``./x:y``), which git would resolve against whatever folder the
        agent happens to run in.
    """
    if url.startswith("/") or "://" in url:
        return False
    before_slash = url.partition("/")[0]
    return ":" not in before_slash


def _cron_file_problem(cron_file: str) -> Optional[str]:
    """Return why ``cron_file`` (``cron.file``) cannot be the managed file, or None.

    Cron reads system crontabs only directly inside ``/etc/cron.d``, and skips names
    with a dot: a file anywhere else (a typo, ``..``, a subfolder) would never run, and
    a sync would still remove the last good file. The value must be exactly
    ``/etc/cron.d/NAME`` (normalized: no ``..``, ``.``, ``//`` or trailing slash).
    """
    folder, _, name = cron_file.rpartition("/")
    if folder != CRON_DIR or name in ("", ".", ".."):
        return (
            f"{cron_file!r} is not a file directly inside {CRON_DIR}/ (cron reads system "
            f'crontabs only there; write "{CRON_DIR}/NAME", below paths.root)'
        )
    if not CRON_FILE_NAME.fullmatch(name):
        return (
            f"{cron_file!r}: the file name may have only letters, digits, '-' and '_' "
            "(cron silently ignores names with a dot)"
        )
    return None


def _location_problems(doc: Located, data: Mapping[str, Any]) -> list[Problem]:
    """Check where things are (schema-checked ``data``): a relative ``repo.url``,
    ``paths.root`` or ``aws.credentials_file`` would depend on the folder cronsync (or
    a job) happens to start in, and a ``cron.file`` outside /etc/cron.d would never be
    read by cron.

    Returns:
        One located Problem per bad key; empty when all are fine.
    """
    problems = []
    url = data.get("repo", {}).get("url")
    if url is not None and is_relative_path(url):
        problems.append(doc.problem("repo.url", "a relative path; use an absolute path or a URL"))
    root = data.get("paths", {}).get("root", "/")
    if not root.startswith("/"):
        problems.append(
            doc.problem(
                "paths.root",
                f"{root!r} is a relative path; use an absolute path (cronsync runs "
                "from any folder: systemd, cron, a shell)",
            )
        )
    cron_problem = _cron_file_problem(data.get("cron", {}).get("file", DEFAULT_CRON_FILE))
    if cron_problem:
        problems.append(doc.problem("cron.file", cron_problem))
    credentials = data.get("aws", {}).get("credentials_file")
    if credentials is not None and not credentials.startswith("/"):
        problems.append(
            doc.problem(
                "aws.credentials_file",
                f"{credentials!r} is a relative path; use an absolute path (jobs start "
                "in their own folders)",
            )
        )
    return problems


def _logic_problems(doc: Located, data: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if "url" not in data.get("repo", {}):
        problems.append(doc.problem("repo.url", "required: the jobs repository's git URL"))
    branch = data.get("repo", {}).get("branch", "main")
    if not BRANCH_NAME.fullmatch(branch):
        problems.append(doc.problem("repo.branch", f"{branch!r} is not a branch name"))
    problems += _location_problems(doc, data)
    problems += signing_problems(doc, data)
    shim = data.get("cron", {}).get("shim", "/usr/local/bin/cronsync-run")
    if not SHIM_PATH.fullmatch(shim):
        problems.append(
            doc.problem("cron.shim", f"{shim!r} is not an absolute path without spaces")
        )
    timeout = data.get("sync", {}).get("git_timeout", "2m")
    if parse_duration(timeout) == 0:
        problems.append(doc.problem("sync.git_timeout", "must be longer than 0s"))
    for table, key in (("sync", "git_timeout"), ("agent", "interval"), ("agent", "full_check")):
        value = data.get(table, {}).get(key)
        if value is not None and parse_duration(value) == 0:
            problems.append(doc.problem(f"{table}.{key}", "must be longer than 0s"))
    lease_ttl = data.get("fleet", {}).get("lease_ttl")
    if lease_ttl is not None and parse_duration(lease_ttl) < 30:
        problems.append(doc.problem("fleet.lease_ttl", "must be at least 30s"))
    socket = data.get("broker", {}).get("socket", DEFAULT_BROKER_SOCKET)
    if not socket.startswith("/") or any(ord(char) < 32 for char in socket):
        problems.append(doc.problem("broker.socket", f"{socket!r} is not an absolute path"))
    endpoint = data.get("aws", {}).get("metadata_endpoint", DEFAULT_METADATA_ENDPOINT)
    if not HOST_PORT.fullmatch(endpoint):
        problems.append(doc.problem("aws.metadata_endpoint", f"{endpoint!r} is not HOST:PORT"))
    zone = data.get("host", {}).get("timezone")
    if zone is not None and not is_known_zone(zone):
        problems.append(doc.problem("host.timezone", f"unknown time zone {zone!r}"))
    return problems


def parse_config(path: Path, text: str) -> AgentConfig:
    """Parse agent.toml text read from ``path``.

    Raises:
        ConfigError: listing every problem, each with file, line and field.
    """
    doc, problems = parse_toml(str(path), text)
    if doc is not None:
        problems = check_table(doc, doc.data, AGENT_FIELDS)
        problems = problems or _logic_problems(doc, doc.data)
    if problems or doc is None:
        raise ConfigError("invalid agent config: " + "; ".join(p.format() for p in problems))
    config = _build(path, doc.data)
    if any(ord(char) < 32 or char == "\x7f" for char in str(config.paths.root)):
        raise ConfigError(
            f"invalid agent config: {path}: paths.root: control characters are "
            "not allowed (the path is written into the crontab)"
        )
    return config


def _build(path: Path, data: Mapping[str, Any]) -> AgentConfig:
    repo, host = data["repo"], data.get("host", {})
    users, cron = data.get("users", {}), data.get("cron", {})
    sync, drift = data.get("sync", {}), data.get("drift", {})
    root = Path(data.get("paths", {}).get("root", "/"))  # absolute: checked above
    cron_file = root / cron.get("file", DEFAULT_CRON_FILE).lstrip("/")
    return AgentConfig(
        path=path,
        repo_url=repo["url"],
        branch=repo.get("branch", "main"),
        host=HostContext(
            name=host.get("name") or detect_host_name(),
            groups=tuple(host.get("groups", ())),
            timezone=host.get("timezone") or detect_host_timezone(),
            allowed_users=tuple(users.get("allowed", ())),
        ),
        users_must_exist=users.get("must_exist", True),
        shim=cron.get("shim", "/usr/local/bin/cronsync-run"),
        keep_releases=sync.get("keep_releases", 5),
        git_timeout_seconds=parse_duration(sync.get("git_timeout", "2m")),
        drift_policy=drift.get("policy", "report"),
        paths=Paths(root=root, cron_file=cron_file),
        run=_run_settings(data, root),
        agent=_agent_settings(data.get("agent", {})),
        broker=_broker_settings(data.get("broker", {}), root),
        fleet=_fleet_settings(data.get("fleet", {})),
        metadata_endpoint=data.get("aws", {}).get("metadata_endpoint", DEFAULT_METADATA_ENDPOINT),
        signing=trust_set(path, data, root),
    )


def _broker_settings(table: Mapping[str, Any], root: Path) -> BrokerSettings:
    socket = table.get("socket", DEFAULT_BROKER_SOCKET)
    idle = table.get("idle_exit")
    return BrokerSettings(
        socket=root / socket.lstrip("/"),
        idle_exit=parse_duration(idle) if idle is not None else BrokerSettings.idle_exit,
    )


def _fleet_settings(table: Mapping[str, Any]) -> FleetSettings:
    ttl = table.get("lease_ttl")
    return FleetSettings(
        table=table.get("table") or None,
        lease_ttl=parse_duration(ttl) if ttl is not None else FleetSettings.lease_ttl,
    )


def _agent_settings(table: Mapping[str, Any]) -> AgentSettings:
    defaults = AgentSettings()
    return AgentSettings(
        interval=parse_duration(table["interval"]) if "interval" in table else defaults.interval,
        splay=parse_duration(table["splay"]) if "splay" in table else defaults.splay,
        max_backoff=(
            parse_duration(table["max_backoff"]) if "max_backoff" in table else defaults.max_backoff
        ),
        full_check=(
            parse_duration(table["full_check"]) if "full_check" in table else defaults.full_check
        ),
    )


def _run_settings(data: Mapping[str, Any], root: Path) -> RunSettings:
    secrets, logs = data.get("secrets", {}), data.get("logs", {})
    aws, run = data.get("aws", {}), data.get("run", {})
    template = secrets.get("file", RunSettings.secrets_file)
    return RunSettings(
        secrets_backend=secrets.get("backend", "file"),
        secrets_file=str(root / template.lstrip("/")),
        logs_cloudwatch=logs.get("cloudwatch", False),
        keep_runs=logs.get("keep_runs", RunSettings.keep_runs),
        keep_days=logs.get("keep_days", RunSettings.keep_days),
        metrics_cloudwatch=data.get("metrics", {}).get("cloudwatch", False),
        aws=AwsSettings(aws.get("region"), aws.get("endpoint_url"), aws.get("credentials_file")),
        kill_grace_seconds=parse_duration(run.get("kill_grace", "30s")),
    )


def load_config(explicit: Optional[str] = None) -> AgentConfig:
    """Read and parse the agent config (see ``config_path`` for which file).

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 or invalid.
    """
    path = config_path(explicit)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"agent config {path} is larger than 1 MiB")
        text = data.decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no agent config at {path} (write one, or pass --config PATH; "
            "see docs/how-to/set-up-a-host.md)"
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"agent config {path} is a directory, not a file") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read agent config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"agent config {path} is not UTF-8 text") from exc
    config = parse_config(path, text)
    check_credentials_file(config)
    return config


def check_credentials_file(config: AgentConfig) -> None:
    """Refuse an ``aws.credentials_file`` that anyone but root (or, for an unprivileged
    sandbox, this user) could read or change, itself or by a folder on its way, or
    that holds no keys: job users must hold no AWS credentials.

    Raises:
        ConfigError: the file is missing, unreadable, too open, or not a credentials
            file with keys in its ``[default]`` profile.
    """
    credentials = config.run.aws.credentials_file
    if credentials is None:
        return
    try:
        file_credentials(credentials)
    except CredentialsFileError as exc:
        if isinstance(exc.__cause__, PermissionError) and os.geteuid() != 0:
            return  # closed to us (an operator's `cronsync status`): we won't use it
        owner = "root" if os.geteuid() == 0 else "root or you"
        raise ConfigError(
            f"invalid agent config: {config.path}: {exc.message} (it must be owned by "
            f"{owner}, mode 0600, in folders only {owner} can write: job users must "
            f"hold no AWS credentials; chmod 600 {credentials})"
        ) from exc
