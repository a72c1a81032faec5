"""The one definition of cronsync's file formats.

Three files have a schema here: a job file (``jobs/NAME.toml``), the repository's
``cronsync.toml`` and the host's ``agent.toml``. The manifest parser checks types,
required keys and unknown keys against these definitions; ``cronsync schema``
prints them as the reference documentation; the tests check that the repository
template and the README agree with them. There is no second list of fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# Kinds of value a field can hold; manifest.py knows how to check each.
STRING = "string"
TEXT = "text"  # a string that may span lines (never reaches the crontab)
BOOL = "bool"
INT = "int"
DURATION = "duration"
ARGV = "argv"  # non-empty list of strings
STRING_LIST = "string-list"
ENV_TABLE = "env-table"  # NAME = "value"
SECRETS_TABLE = "secrets-table"  # NAME = "ref" | { secret = "...", key = "..." }
TABLE = "table"  # nested fields
ENUM = "enum"

CONCURRENCY_POLICIES = ("forbid", "allow", "replace")
DRIFT_POLICIES = ("report", "revert")
SECRETS_BACKENDS = ("file", "aws")


@dataclass(frozen=True)
class Field:
    """One key of a file format.

    Attributes:
        name: the TOML key.
        kind: one of the kind constants above.
        description: one sentence for the reference docs.
        example: a TOML value as it would be written (for the docs).
        required: the key must be present (after defaults are applied).
        default: the documented default, as text, or None.
        choices: allowed values for ENUM.
        fields: sub-fields for TABLE.
    """

    name: str
    kind: str
    description: str
    example: str = ""
    required: bool = False
    default: Optional[str] = None
    choices: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()


SUCCESS_FIELDS = (
    Field(
        "within",
        DURATION,
        "The job is stale (status and alarm) when it has not succeeded for this long.",
        '"26h"',
    ),
    Field(
        "check",
        ARGV,
        "A command (argv) run after a zero exit; its failure fails the run.",
        '["scripts/check-aggregate.sh"]',
    ),
)

JOB_FIELDS = (
    Field(
        "description",
        TEXT,
        "What the job does and why it exists.",
        '"Aggregate yesterday\'s reviews into the ranking tables"',
        required=True,
    ),
    Field(
        "owner",
        STRING,
        "Who to ask about the job: a team or an e-mail address.",
        '"data-team@example.com"',
        required=True,
    ),
    Field(
        "schedule",
        STRING,
        "When it runs: 5 cron fields (minute hour day-of-month month day-of-week, names "
        "such as mon-fri and jan allowed) or @hourly, @daily, @weekly, @monthly, @yearly, "
        "@reboot.",
        '"30 3 * * *"',
        required=True,
    ),
    Field(
        "timezone",
        STRING,
        "IANA zone the schedule is written in; honoured even where cron ignores CRON_TZ.",
        '"Asia/Tokyo"',
        default="defaults.timezone, else the host's zone",
    ),
    Field(
        "command",
        ARGV,
        "The program and its arguments, run without a shell. The first item is a script "
        "path relative to the repository (scripts/x.sh) or a program name found in PATH.",
        '["scripts/nightly-aggregate.sh", "--date", "yesterday"]',
    ),
    Field(
        "shell",
        STRING,
        "Instead of command: a string run with /bin/sh -c, for pipes and redirects.",
        '"find /var/tmp/exports -type f -mtime +14 -delete"',
    ),
    Field(
        "user",
        STRING,
        "Unix user the job runs as.",
        '"batch"',
        required=True,
        default="defaults.user",
    ),
    Field(
        "workdir",
        STRING,
        "Directory the job starts in: relative to the repository, or an absolute host path.",
        '"scripts"',
        default="the repository root of the installed release",
    ),
    Field("env", ENV_TABLE, "Environment variables (not secrets).", '{ RAILS_ENV = "production" }'),
    Field(
        "secrets",
        SECRETS_TABLE,
        'Environment variables filled from a secret store at run time: "name" (whole '
        'Secrets Manager secret), { secret = "name", key = "k" } (one key of a JSON '
        'secret) or "ssm:/path" (SSM Parameter Store). Values never live in the repository.',
        '{ DB_PASSWORD = { secret = "batch-prod/db", key = "password" } }',
    ),
    Field(
        "timeout",
        DURATION,
        "Stop the job (TERM, then KILL) when it runs longer than this.",
        '"45m"',
        default="defaults.timeout, else none",
    ),
    Field(
        "concurrency",
        ENUM,
        "What to do when the previous run is still going: forbid (skip this run), allow, "
        "replace (stop the previous run).",
        '"forbid"',
        default="defaults.concurrency, else forbid",
        choices=CONCURRENCY_POLICIES,
    ),
    Field(
        "jitter",
        DURATION,
        "Random delay before the start, so many hosts do not start together.",
        '"2m"',
        default="defaults.jitter, else 0s",
    ),
    Field(
        "enabled",
        BOOL,
        "false keeps a retired job documented but not installed.",
        "false",
        default="true",
    ),
    Field(
        "reason",
        TEXT,
        "Why the job is disabled (required when enabled = false).",
        '"Replaced by the nightly-aggregate job on 2025-04-01"',
    ),
    Field(
        "hosts",
        STRING_LIST,
        "Install only on hosts whose name matches one of these shell-style patterns.",
        '["batch-1", "batch-eu-*"]',
        default="every host",
    ),
    Field(
        "groups",
        STRING_LIST,
        "Install only on hosts in one of these groups (agent.toml host.groups).",
        '["eu"]',
        default="every host",
    ),
    Field("success", TABLE, 'What "it worked" means.', fields=SUCCESS_FIELDS),
)

DEFAULTS_FIELDS = (
    Field("user", STRING, "Default unix user of every job.", '"batch"'),
    Field("timezone", STRING, "Default zone every schedule is written in.", '"UTC"'),
    Field("timeout", DURATION, "Default timeout of every job.", '"1h"'),
    Field(
        "concurrency", ENUM, "Default concurrency policy.", '"forbid"', choices=CONCURRENCY_POLICIES
    ),
    Field("jitter", DURATION, "Default start delay.", '"0s"'),
)

REPO_FIELDS = (
    Field(
        "defaults", TABLE, "Values every job gets unless it sets its own.", fields=DEFAULTS_FIELDS
    ),
    Field(
        "cloudwatch",
        TABLE,
        "Where job output and metrics go in CloudWatch (used on hosts that enable it).",
        fields=(
            Field(
                "log_group",
                STRING,
                "Log group receiving every run's output (a stream per run: HOST/JOB/RUN-ID).",
                '"/cronsync/batch-prod"',
                default="/cronsync/jobs",
            ),
            Field(
                "metrics_namespace",
                STRING,
                "Namespace of the job metrics.",
                '"Cronsync"',
                default="Cronsync",
            ),
        ),
    ),
)

AGENT_FIELDS = (
    Field(
        "repo",
        TABLE,
        "Where the jobs come from.",
        fields=(
            Field(
                "url",
                STRING,
                "Git URL or local path of the jobs repository.",
                '"https://git.example.com/batch/jobs.git"',
                required=True,
            ),
            Field("branch", STRING, "Branch to install.", '"main"', default="main"),
        ),
    ),
    Field(
        "host",
        TABLE,
        "This host.",
        fields=(
            Field(
                "name",
                STRING,
                "Host name used for job targeting and reports.",
                '"batch-1"',
                default="the system host name",
            ),
            Field("groups", STRING_LIST, "Groups this host belongs to.", '["eu", "prod"]'),
            Field(
                "timezone",
                STRING,
                "The zone cron runs in on this host.",
                '"Etc/UTC"',
                default="read from /etc/timezone or /etc/localtime",
            ),
        ),
    ),
    Field(
        "users",
        TABLE,
        "Which users jobs may run as here.",
        fields=(
            Field("allowed", STRING_LIST, "Users jobs may run as; empty allows any.", '["batch"]'),
            Field(
                "must_exist",
                BOOL,
                "Refuse jobs whose user does not exist on this host "
                "(cron ignores the whole file for one unknown user).",
                "true",
                default="true",
            ),
        ),
    ),
    Field(
        "paths",
        TABLE,
        "Where cronsync keeps its files.",
        fields=(
            Field(
                "root",
                STRING,
                "An absolute directory every host path below hangs off, so the "
                "agent can run unprivileged in a sandbox.",
                '"/"',
                default="/",
            ),
        ),
    ),
    Field(
        "cron",
        TABLE,
        "The cron file cronsync owns.",
        fields=(
            Field(
                "file",
                STRING,
                "The managed file: directly in /etc/cron.d (below paths.root), its name "
                "without a dot (cron skips such files).",
                '"/etc/cron.d/cronsync"',
                default="/etc/cron.d/cronsync",
            ),
            Field(
                "shim",
                STRING,
                "Absolute path of cronsync-run as cron sees it.",
                '"/usr/local/bin/cronsync-run"',
                default="/usr/local/bin/cronsync-run",
            ),
        ),
    ),
    Field(
        "sync",
        TABLE,
        "How a sync behaves.",
        fields=(
            Field(
                "keep_releases", INT, "Old releases kept besides the current one.", "5", default="5"
            ),
            Field(
                "git_timeout",
                DURATION,
                "Give up a fetch or clone after this long.",
                '"2m"',
                default="2m",
            ),
        ),
    ),
    Field(
        "agent",
        TABLE,
        "How `cronsync agent` (the long-running service) paces itself.",
        fields=(
            Field("interval", DURATION, "Time between syncs.", '"60s"', default="60s"),
            Field(
                "splay",
                DURATION,
                "A random extra delay up to this much before each sync, "
                "so a fleet does not hit the git server together.",
                '"10s"',
                default="10s",
            ),
            Field(
                "max_backoff",
                DURATION,
                "While the remote fails, the wait doubles up to this.",
                '"15m"',
                default="15m",
            ),
            Field(
                "full_check",
                DURATION,
                "How often every file of the installed release is "
                "compared with what was installed (edits are also caught at once by "
                "file watching).",
                '"10m"',
                default="10m",
            ),
        ),
    ),
    Field(
        "drift",
        TABLE,
        "What to do when the installed files differ from what cronsync wrote.",
        fields=(
            Field(
                "policy",
                ENUM,
                "report: record it; revert: restore, then record.",
                '"report"',
                default="report",
                choices=DRIFT_POLICIES,
            ),
        ),
    ),
    Field(
        "secrets",
        TABLE,
        "Where cronsync-run fetches the secrets jobs reference.",
        fields=(
            Field(
                "backend",
                ENUM,
                "aws: Secrets Manager and SSM Parameter Store; file: a local "
                "TOML file per user (mode 0600, owned by the user or root).",
                '"aws"',
                default="file",
                choices=SECRETS_BACKENDS,
            ),
            Field(
                "file",
                STRING,
                "The file backend's file ({user} is the job's user; below paths.root).",
                '"/etc/cronsync/secrets.d/{user}.toml"',
                default="/etc/cronsync/secrets.d/{user}.toml",
            ),
        ),
    ),
    Field(
        "logs",
        TABLE,
        "Where job output goes besides the local log.",
        fields=(
            Field(
                "cloudwatch",
                BOOL,
                "Forward every run's output to CloudWatch Logs.",
                "true",
                default="false",
            ),
            Field(
                "keep_runs", INT, "Run records and local logs kept per job.", "100", default="100"
            ),
            Field(
                "keep_days",
                INT,
                "Local logs older than this many days are removed.",
                "30",
                default="30",
            ),
        ),
    ),
    Field(
        "metrics",
        TABLE,
        "Job and agent metrics.",
        fields=(
            Field("cloudwatch", BOOL, "Publish metrics to CloudWatch.", "true", default="false"),
        ),
    ),
    Field(
        "aws",
        TABLE,
        "How to reach AWS (credentials come from the standard chain: the instance role).",
        fields=(
            Field(
                "region",
                STRING,
                "Region of the secrets, logs and metrics.",
                '"eu-west-1"',
                default="the standard chain (AWS_REGION, instance metadata)",
            ),
            Field(
                "endpoint_url",
                STRING,
                "One endpoint for every AWS service (VPC endpoints, tests).",
                '"https://vpce.example.internal"',
            ),
            Field(
                "credentials_file",
                STRING,
                "A shared credentials file for hosts outside AWS (an absolute path, "
                "readable by the jobs' users).",
                '"/etc/cronsync/aws-credentials"',
            ),
        ),
    ),
    Field(
        "run",
        TABLE,
        "How cronsync-run runs jobs.",
        fields=(
            Field(
                "kill_grace",
                DURATION,
                "After a timeout's TERM, KILL the job's processes this much later.",
                '"30s"',
                default="30s",
            ),
        ),
    ),
)
