"""The one definition of cronsync's file formats.

Three files have a schema: a job file (``jobs/NAME.toml``) and the repository's
``cronsync.toml`` here, the host's ``agent.toml`` in :mod:`cronsync.core.agentschema`. The
manifest parser checks types, required keys and unknown keys against these
definitions; ``cronsync schema`` prints them as the reference documentation; the tests
check that the repository template and the README agree with them. There is no second
list of fields.
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
RUN_ON_CHOICES = ("every-host", "one-host")
FLEET_UNREACHABLE_CHOICES = ("skip", "run")


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
        "The job is stale (status, the JobStale metric and alarms) when it has not "
        "succeeded for this long (counted from the install when it never did). Without "
        "it the window comes from the schedule: the longest gap between two runs over "
        "the sync's calendar year and the next, in the job's zone (DST days included), "
        "plus the timeout, the jitter and a margin of 10 % of the gap (5 minutes to 1 "
        "hour); `cronsync plan` and `status` show it. An @reboot job without it is never "
        "stale.",
        '"26h"',
    ),
    Field(
        "check",
        ARGV,
        "A command (argv) run after a zero exit; its failure fails the run.",
        '["scripts/check-aggregate.sh"]',
    ),
)

MIGRATION_FIELDS = (
    Field(
        "verified_by",
        STRING,
        "Who checked that this imported job does its work on the new host; with "
        "verified_on it signs the job off in `cronsync migration` (a reviewed change).",
        '"ana@example.com"',
    ),
    Field(
        "verified_on",
        STRING,
        "The day of that check, as YYYY-MM-DD.",
        '"2026-12-07"',
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
    Field(
        "run_on",
        ENUM,
        "every-host: each host that installs the job runs it; one-host: the hosts race "
        "for each scheduled occurrence through the fleet's DynamoDB table (agent.toml "
        "[fleet] table) and only the winner runs it, the others record that it ran there; "
        "the winner's job sees CRONSYNC_FENCING_TOKEN.",
        '"one-host"',
        default="every-host",
        choices=RUN_ON_CHOICES,
    ),
    Field(
        "fleet_unreachable",
        ENUM,
        "With run_on = one-host, what to do when the fleet's table cannot be reached "
        "(or the host has no [fleet] table): skip the occurrence (recorded, metric "
        "FleetLeaseFailed) or run it anyway (it may then run on more than one host).",
        '"run"',
        default="skip",
        choices=FLEET_UNREACHABLE_CHOICES,
    ),
    Field("success", TABLE, 'What "it worked" means.', fields=SUCCESS_FIELDS),
    Field(
        "migration",
        TABLE,
        "The sign-off of a job moved from a legacy crontab (see `cronsync migration`).",
        fields=MIGRATION_FIELDS,
    ),
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
