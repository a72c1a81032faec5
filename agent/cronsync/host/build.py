"""From a tree of job files to what would be installed: validate, compile, render.

Shared by ``sync`` (which then installs the result) and ``plan`` (which only compares
it with what is installed).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from cronsync.core.checkcache import CheckCache, reusable
from cronsync.core.compiled import compile_jobs, dump_jobs
from cronsync.core.model import ERROR, HostContext, Problem
from cronsync.core.render import CronEntry, SourceInfo, plan_entries, render_crontab
from cronsync.host.checkcache import facts_key
from cronsync.host.config import AgentConfig
from cronsync.host.hostinfo import existing_users, read_uid_min, system_users
from cronsync.repo.gate import GateReport, check_repository, check_repository_reusing


@dataclass(frozen=True)
class Build:
    """The outcome of building one tree for one host.

    Attributes:
        report: the validation report (``ok`` says whether anything blocks).
        problems: every error and warning, validation and rendering alike.
        entries: the cron entries (empty when not ok).
        jobs_doc: the compiled jobs document.
        jobs_json: its serialised bytes, as written to the release.
        cron_text: the cron file's text.
        checks: what the checks of each job file concluded, for the next build (None
            when the build was not given git's listing, or the records cannot be told).
        reused: how many job files' checks came from the previous build's cache.
        files: how many job files there were (0 when not counted).
    """

    report: GateReport
    problems: tuple[Problem, ...]
    entries: tuple[CronEntry, ...]
    jobs_doc: dict[str, Any]
    jobs_json: bytes
    cron_text: str
    checks: Optional[CheckCache] = None
    reused: int = 0
    files: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing blocks an install."""
        return not any(p.severity == ERROR for p in self.problems)

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that block an install."""
        return tuple(p for p in self.problems if p.severity == ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The problems that are only reported."""
        return tuple(p for p in self.problems if p.severity != ERROR)


def host_context(config: AgentConfig) -> HostContext:
    """Return the host context for validation: the config's rules with this host's
    facts (its system users below UID_MIN, for the rule that root and they run jobs
    only when ``users.allowed`` names them; and, when users must exist, every user:
    cron ignores the whole file for one unknown user)."""
    uid_min = read_uid_min()
    return replace(
        config.host,
        existing_users=existing_users() if config.users_must_exist else None,
        system_users=system_users(uid_min),
        uid_min=uid_min,
        config_file=str(config.path),
    )


def runtime_settings(config: AgentConfig) -> dict[str, Any]:
    """Return what cronsync-run needs to know about this host, for jobs.json."""
    run, paths = config.run, config.paths
    return {
        "host": config.host.name,
        "root": str(paths.root),
        "runs_dir": str(paths.runs_dir),
        "log_dir": str(paths.log_dir),
        "keep_runs": run.keep_runs,
        "keep_days": run.keep_days,
        "kill_grace": run.kill_grace_seconds,
        "secrets": {"backend": run.secrets_backend, "file": run.secrets_file},
        "logs": {"cloudwatch": run.logs_cloudwatch},
        "metrics": {"cloudwatch": run.metrics_cloudwatch},
        "broker": {"socket": str(config.broker.socket)},
        "fleet": {"table": config.fleet.table},
        "aws": {
            "region": run.aws.region,
            "endpoint_url": run.aws.endpoint_url,
            "credentials_file": run.aws.credentials_file,
        },
    }


def shim_command(config: AgentConfig) -> str:
    """Return how a cron line starts cronsync-run (``--root`` only off the default)."""
    root = str(config.paths.root)
    return config.shim if root == "/" else f"{config.shim} --root {shlex.quote(root)}"


RULES_VERSION = 3
"""The version of the rules a commit is validated and compiled by: raise it when a release
adds or tightens a rule (2: root and system users need ``users.allowed``) or compiles
more into ``jobs.json`` (3: ``stale_window``), so the first sync after an upgrade builds
the installed commit again instead of calling it up to date."""


def config_digest(config: AgentConfig) -> str:
    """Hash what decides whether the installed commit may stay: the agent config fields
    that shape the installed files, the signing settings and :data:`RULES_VERSION`;
    when it changes, a sync validates, verifies and re-renders even if the commit did not.

    The trust set's content is not in it (gpg writes into its keyring as it reads): a
    sync checks the signature of the installed commit again every time instead."""
    host, signing = config.host, config.signing
    shaping = [
        RULES_VERSION,
        [signing.format, signing.path] if signing else None,
        config.repo_url,
        config.branch,
        host.name,
        list(host.groups),
        host.timezone,
        list(host.allowed_users),
        config.users_must_exist,
        shim_command(config),
        str(config.paths.cron_file),
        runtime_settings(config),
    ]
    return hashlib.sha256(json.dumps(shaping).encode()).hexdigest()[:16]


def installed_since(config: AgentConfig) -> dict[str, str]:
    """Job -> its ``installed_since`` in the installed release's jobs.json, for the jobs
    installed there ({} when there is none, or it cannot be read: the jobs then count
    from this build)."""
    from cronsync.core.release import JOBS_FILE

    try:
        data = json.loads((config.paths.current / JOBS_FILE).read_text(encoding="utf-8"))
        jobs = data["jobs"]
        return {
            name: job["installed_since"]
            for name, job in jobs.items()
            if job.get("installed") is True and isinstance(job.get("installed_since"), str)
        }
    except (OSError, ValueError, RecursionError, TypeError, KeyError, AttributeError):
        return {}


def checked_entries(
    tree: Path,
    rules: Optional[HostContext],
    host: HostContext,
    now: datetime,
    lint: bool = False,
) -> tuple[GateReport, tuple[Problem, ...], tuple[CronEntry, ...]]:
    """Check the job files in ``tree`` and, when they pass, plan their cron entries for
    ``host``.

    Args:
        tree: an exported release's ``repo/`` or a working tree.
        rules: the host whose rules validation applies (users, zone), or None for the
            repository's own rules (as ``cronsync validate`` without ``--host``).
        host: the host the entries are planned for.
        now: the moment time-zone offsets are worked out at.
        lint: run shellcheck too (warnings).

    Returns:
        The report, every problem (validation, then rendering in host time) and the
        entries (none when validation found errors). Problems in the files never raise.
    """
    report = check_repository(tree, rules, lint=lint)
    problems, entries = _plan(report, host, now)
    return report, problems, entries


def _plan(
    report: GateReport, host: HostContext, now: datetime
) -> tuple[tuple[Problem, ...], tuple[CronEntry, ...]]:
    """Every problem and, when validation passed, the cron entries (see
    :func:`checked_entries`)."""
    problems = list(report.problems)
    entries: tuple[CronEntry, ...] = ()
    if report.ok:
        entries, render_problems = plan_entries(report.repo, host, now)
        problems += render_problems
    return tuple(problems), entries


def build_tree(
    config: AgentConfig,
    tree: Path,
    source: SourceInfo,
    now: datetime,
    lint: bool = False,
    listing: Optional[Mapping[str, str]] = None,
    cache: Optional[CheckCache] = None,
) -> Build:
    """Validate the job files in ``tree`` for this host and render what to install.

    Args:
        config: the host's agent config.
        tree: an exported release's ``repo/`` or a working tree.
        source: url, branch and commit for the header and jobs.json.
        now: the moment used to work out time-zone offsets.
        lint: run shellcheck too (warnings).
        listing: git's listing of the commit ``tree`` was exported from (path -> mode
            and blob id): the build then reuses what still holds of ``cache`` (the
            previous release's) and records its own checks (not with ``lint``).
        cache: the check cache of the installed release, or None.

    Returns:
        The build; it does not raise for problems in the job files.
    """
    host = host_context(config)
    checks: Optional[CheckCache] = None
    reused = files = 0
    if listing is None or lint:
        report = check_repository(tree, host, lint=lint)
    else:
        facts = facts_key(config_digest(config), host)
        found = check_repository_reusing(tree, host, listing, reusable(cache, facts, listing))
        report, reused, files = found.report, found.reused, found.files
        if found.records is not None:
            checks = CheckCache(facts, dict(listing), found.records)
    problems, entries = _plan(report, host, now)
    doc = compile_jobs(
        report.repo, host, source, entries, runtime_settings(config), now, installed_since(config)
    )
    return Build(
        report,
        problems,
        entries,
        doc,
        dump_jobs(doc),
        render_crontab(entries, source, shim_command(config)),
        checks,
        reused,
        files,
    )
