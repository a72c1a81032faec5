"""The schema of the host's ``agent.toml``: its tables and their fields.

Part of the one definition of cronsync's file formats (:mod:`cronsync.core.schema` has the
kinds of value, :class:`~cronsync.core.schema.Field` and the job file and ``cronsync.toml``
fields). The config loader checks ``agent.toml`` against :data:`AGENT_FIELDS`;
``cronsync schema`` prints it as the reference documentation.
"""

from __future__ import annotations

from cronsync.core.schema import BOOL, DURATION, ENUM, INT, STRING, STRING_LIST, TABLE, Field
from cronsync.core.signing import SIGNING_FORMATS

DRIFT_POLICIES = ("report", "revert")
SECRETS_BACKENDS = ("file", "aws")

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
            Field(
                "require_signed",
                ENUM,
                "Install a commit only when the branch tip's signature verifies against "
                "this host's trust set (allowed_signers for ssh, gpg_home for gpg); any "
                "other tip is refused and the last-known-good stays (docs/how-to/"
                "sign-commits.md).",
                '"ssh"',
                default="unset: signatures are not checked",
                choices=SIGNING_FORMATS,
            ),
            Field(
                "allowed_signers",
                STRING,
                'With require_signed = "ssh": git\'s allowed signers file (below '
                "paths.root; owned by root, writable by nobody else).",
                '"/etc/cronsync/allowed_signers"',
                default="/etc/cronsync/allowed_signers",
            ),
            Field(
                "gpg_home",
                STRING,
                'With require_signed = "gpg": the keyring directory (GNUPGHOME) whose '
                "keys are trusted (below paths.root; owned by root, writable by nobody "
                "else).",
                '"/etc/cronsync/gnupg"',
                default="/etc/cronsync/gnupg",
            ),
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
            Field(
                "allowed",
                STRING_LIST,
                "Users jobs may run as. Empty allows any user except root and the system "
                "users (uid below UID_MIN of /etc/login.defs, 1000 when it does not say): "
                "they run jobs only when named here.",
                '["batch"]',
                default="empty",
            ),
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
                "owned by root, mode 0600: only the agent and the broker read it; "
                "anything wider is refused).",
                '"/etc/cronsync/aws-credentials"',
            ),
            Field(
                "metadata_endpoint",
                STRING,
                "The instance metadata service as `cronsync doctor` probes it "
                "(HOST:PORT): job users must not reach it.",
                '"169.254.169.254:80"',
                default="169.254.169.254:80",
            ),
        ),
    ),
    Field(
        "broker",
        TABLE,
        "The broker: hands each job user its own jobs' AWS secrets, ships job output "
        "and metrics (served by `cronsync agent`, or `cronsync broker`).",
        fields=(
            Field(
                "socket",
                STRING,
                "Its Unix socket (below paths.root; cronsync-run connects to it).",
                '"/run/cronsync/broker.sock"',
                default="/run/cronsync/broker.sock",
            ),
            Field(
                "idle_exit",
                DURATION,
                "A socket-activated `cronsync broker` exits after this long without "
                "requests or running jobs (systemd starts it again on the next).",
                '"5m"',
                default="5m",
            ),
        ),
    ),
    Field(
        "fleet",
        TABLE,
        "More than one host: the DynamoDB table (region and endpoint from [aws]) that "
        'holds the leases of run_on = "one-host" jobs and every host\'s status summary '
        "(README 'Running more than one host').",
        fields=(
            Field(
                "table",
                STRING,
                "The DynamoDB table's name (the template's FleetTableName output).",
                '"cronsync-fleet"',
                default="unset: no fleet, every job runs on every host that installs it",
            ),
            Field(
                "lease_ttl",
                DURATION,
                "How long a lease holds without renewal: a host that dies mid-run frees "
                "its forbid job's lease after this long.",
                '"5m"',
                default="5m",
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
