"""Semantic checks on a parsed job repository (pure: no files, no subprocesses).

``manifest`` has already checked types and unknown keys; this module checks what the
values mean: schedules that cron would refuse or never run, unknown zones, command
paths that leave the repository, malformed secret references, users the host does
not allow. Checks that need the files themselves live in ``scriptcheck``.
"""

from __future__ import annotations

import posixpath
import re
from datetime import date
from fnmatch import fnmatchcase
from functools import cache
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsync.core.errors import ScheduleError
from cronsync.core.model import WARNING, Defaults, HostContext, Job, JobRepo, Problem, SecretRef
from cronsync.core.schedule import parse_schedule

USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?")
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
SECRET_ARN = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
)
SSM_PATH = re.compile(r"/[A-Za-z0-9_./-]{1,1010}")
HOST_PATTERN = re.compile(r"[A-Za-z0-9_.*?\[\]!-]+")
GROUP_NAME = re.compile(r"[A-Za-z0-9_.-]+")
ROOT_USER = "root"


@cache
def is_known_zone(name: str) -> bool:
    """Return whether ``name`` is an IANA time zone this host's tz database knows."""
    if name != name.strip() or not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def program_path_problem(program: str) -> Optional[str]:
    """Check the first item of a command: a repository path or a bare program name.

    Returns:
        A message when the program points outside the repository, else None.
    """
    if program.startswith("/"):
        return (
            f"{program!r} is an absolute path, outside the repository: put the script "
            "under scripts/ or name a program found in PATH (e.g. 'python3')"
        )
    if ".." in program.split("/"):
        return f"{program!r} climbs out of its folder with '..'; name it from the repository root"
    if program.startswith("~"):
        return f"{program!r} refers to a home directory, outside the repository"
    if "/" not in program and any(c.isspace() for c in program):
        return (
            f"{program!r} contains spaces: command is an argv list, write "
            '["prog", "arg"] or use shell = "..." for a shell line'
        )
    return None


def is_repo_path(program: str) -> bool:
    """Return whether a command's program is a file in the repository (has a '/')."""
    return "/" in program


def _check_secret(job: Job, ref: SecretRef) -> Optional[Problem]:
    where = f"secrets.{ref.env}"
    if ref.store == "ssm":
        if not SSM_PATH.fullmatch(ref.name):
            return job.problem(
                where, f"'ssm:{ref.name}' is not a parameter path: write 'ssm:/path/to/parameter'"
            )
        return None
    if not (SECRET_NAME.fullmatch(ref.name) or SECRET_ARN.fullmatch(ref.name)):
        return job.problem(
            where,
            f"{ref.name!r} is not a Secrets Manager name or ARN (letters, digits and /_+=.@- only)",
        )
    if ref.key is not None and not ref.key.strip():
        return job.problem(where, "key must not be empty")
    return None


def _check_command(job: Job) -> list[Problem]:
    problems = []
    if bool(job.command) == bool(job.shell):
        which = "both" if job.command else "neither"
        problems.append(
            job.problem(
                "command",
                f"set exactly one of command (argv) or shell "
                f"(a /bin/sh line); this job sets {which}",
            )
        )
    for field, argv in (("command", job.command), ("success.check", job.success.check)):
        message = program_path_problem(argv[0]) if argv else None
        if message:
            problems.append(job.problem(field, message))
    if job.workdir and not job.workdir.startswith("/"):
        normal = posixpath.normpath(job.workdir)
        if normal == ".." or normal.startswith("../"):
            problems.append(job.problem("workdir", f"{job.workdir!r} is outside the repository"))
    return problems


def _is_system_user(user: str, host: HostContext) -> bool:
    """Whether ``user`` is root or a system user (uid below UID_MIN) on ``host``; when
    the host's uids are not known, only ``root`` is."""
    known = host.system_users
    return user == ROOT_USER or (known is not None and user in known)


def _system_user_refusal(user: str, host: HostContext) -> str:
    """The message refusing a job of root or a system user that ``users.allowed`` of
    ``host`` does not name (one line: what, and how to allow it)."""
    what = "root" if user == ROOT_USER else f"a system user (uid below UID_MIN {host.uid_min})"
    return (
        f"user {user!r} is refused on host {host.name}: {what} runs jobs only when named "
        f"in users.allowed of {host.config_file} (add {user!r} there to allow it)"
    )


def _check_user(job: Job, host: Optional[HostContext]) -> list[Problem]:
    if not USER_NAME.fullmatch(job.user):  # inherited: said once, at cronsync.toml
        own = "user" in job.lines
        return [job.problem("user", f"{job.user!r} is not a valid user name")] if own else []
    if host is None:  # a repository's CI: no host's users or rules to check against
        return []
    if host.allowed_users and job.user not in host.allowed_users:
        allowed = ", ".join(host.allowed_users)
        return [
            job.problem(
                "user", f"user {job.user!r} is not allowed on host {host.name} (allowed: {allowed})"
            )
        ]
    if not host.allowed_users and _is_system_user(job.user, host):
        return [job.problem("user", _system_user_refusal(job.user, host))]
    if host.existing_users is not None and job.user not in host.existing_users:
        return [
            job.problem(
                "user",
                f"user {job.user!r} does not exist on host {host.name} "
                "(cron would ignore the whole file)",
            )
        ]
    return []


def _check_targets(job: Job) -> list[Problem]:
    problems = [
        job.problem("hosts", f"{p!r} is not a host name pattern")
        for p in job.hosts
        if not HOST_PATTERN.fullmatch(p)
    ]
    problems += [
        job.problem("groups", f"{g!r} is not a group name")
        for g in job.groups
        if not GROUP_NAME.fullmatch(g)
    ]
    return problems


def _check_schedule(job: Job) -> list[Problem]:
    problems = []
    try:
        parse_schedule(job.schedule)
    except ScheduleError as exc:
        problems.append(job.problem("schedule", f"{job.schedule!r}: {exc.message}"))
    # an inherited zone is checked once, at cronsync.toml (validate_defaults)
    if job.timezone is not None and "timezone" in job.lines and not is_known_zone(job.timezone):
        problems.append(
            job.problem(
                "timezone",
                f"unknown time zone {job.timezone!r} (use an IANA name such as 'Asia/Tokyo')",
            )
        )
    return problems


def _check_enabled(job: Job) -> list[Problem]:
    if not job.enabled and not job.reason:
        return [
            job.problem(
                "reason",
                "a disabled job needs a reason (why it was retired, by whom, what replaced it)",
            )
        ]
    if job.enabled and job.reason:
        return [job.problem("reason", "reason is only used with enabled = false", WARNING)]
    return []


def _check_placeholders(job: Job) -> list[Problem]:
    """Imported jobs start with TODO placeholders that a person must replace."""
    return [
        job.problem(
            field,
            "still a placeholder: say "
            + (
                "what the job does and why"
                if field == "description"
                else "who to ask about it (a team or an e-mail)"
            ),
        )
        for field, value in (("description", job.description), ("owner", job.owner))
        if value.strip().upper().startswith("TODO")
    ]


def _check_env(job: Job) -> list[Problem]:
    both = sorted(set(job.env) & {ref.env for ref in job.secrets})
    return [
        job.problem(f"secrets.{name}", f"{name} is set in both env and secrets") for name in both
    ]


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _check_migration(job: Job) -> list[Problem]:
    """``[migration]``: a sign-off names who and the day, both, the day a real one."""
    by, on = job.verified_by, job.verified_on
    if by is None and on is None:
        return []
    if by is None or not by.strip():
        return [job.problem("migration.verified_by", "a sign-off needs who made it")]
    if on is None:
        return [job.problem("migration.verified_on", "a sign-off needs the day (YYYY-MM-DD)")]
    try:
        valid = _DAY.fullmatch(on) is not None and date.fromisoformat(on) is not None
    except ValueError:
        valid = False
    if not valid:
        return [job.problem("migration.verified_on", f"{on!r} is not a day written YYYY-MM-DD")]
    return []


def _check_fleet(job: Job) -> list[Problem]:
    """``run_on = "one-host"``: what a lease per occurrence cannot do."""
    if job.run_on != "one-host":
        if "fleet_unreachable" in job.lines:
            return [
                job.problem(
                    "fleet_unreachable",
                    'only used with run_on = "one-host" (this job runs on every host)',
                    WARNING,
                )
            ]
        return []
    if job.schedule.strip() == "@reboot":
        return [
            job.problem(
                "run_on",
                '"one-host" needs scheduled occurrences to share; @reboot happens on '
                "each host at its own start (use every-host)",
            )
        ]
    problems = []
    if job.concurrency == "replace":
        problems.append(
            job.problem(
                "concurrency",
                '"replace" cannot work with run_on = "one-host": a new run would have to '
                "stop the previous one on another host; use forbid (skip while it runs "
                "anywhere) or allow",
            )
        )
    if job.timezone is None:
        problems.append(
            job.problem(
                "run_on",
                '"one-host" needs a zone of the job\'s own (timezone, or defaults.timezone '
                "in cronsync.toml): in each host's zone, hosts in different zones would "
                "name different occurrences and each run it",
            )
        )
    return problems


def validate_job(job: Job, host: Optional[HostContext] = None) -> list[Problem]:
    """Check one job's values; ``host`` adds the host's user rules (without it, as in a
    repository's CI, users are checked only for their form).

    Returns:
        Every problem found (errors and warnings), located at the job's fields.
    """
    problems = _check_schedule(job) + _check_command(job) + _check_user(job, host)
    problems += _check_targets(job) + _check_enabled(job) + _check_env(job)
    problems += _check_placeholders(job) + _check_migration(job) + _check_fleet(job)
    for ref in job.secrets:
        problem = _check_secret(job, ref)
        if problem:
            problems.append(problem)
    return problems


def validate_defaults(defaults: Defaults, path: str) -> list[Problem]:
    """Check the repository defaults' values (their types were checked on parse)."""
    problems = []
    if defaults.timezone is not None and not is_known_zone(defaults.timezone):
        problems.append(
            Problem(
                path,
                defaults.lines.get("defaults.timezone"),
                "defaults.timezone",
                f"unknown time zone {defaults.timezone!r} (use an IANA name such as "
                "'Asia/Tokyo'; every job without its own timezone uses it)",
            )
        )
    if defaults.user is not None and not USER_NAME.fullmatch(defaults.user):
        problems.append(
            Problem(
                path,
                defaults.lines.get("defaults.user"),
                "defaults.user",
                f"{defaults.user!r} is not a valid user name",
            )
        )
    return problems


def validate_repo(
    repo: JobRepo, host: Optional[HostContext] = None, config_path: str = "cronsync.toml"
) -> list[Problem]:
    """Check every job of a parsed repository.

    Returns:
        Every problem, in job order; a job's problems never hide another's.
    """
    problems = validate_defaults(repo.defaults, config_path)
    for job in repo.jobs:
        problems += validate_job(job, host)
    return problems


def is_targeted(job: Job, host: HostContext) -> bool:
    """Return whether ``job`` is meant for ``host`` (no hosts/groups means every host)."""
    if not job.hosts and not job.groups:
        return True
    if any(fnmatchcase(host.name, pattern) for pattern in job.hosts):
        return True
    return bool(set(job.groups) & set(host.groups))
