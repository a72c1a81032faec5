"""Semantic checks of a parsed repository: ``cronsync.core.validate``."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import pytest

from cronsync.core.manifest import SourceFile, parse_repo
from cronsync.core.model import (
    ERROR,
    WARNING,
    Defaults,
    HostContext,
    Job,
    JobRepo,
    Problem,
    SecretRef,
)
from cronsync.core.validate import is_targeted, program_path_problem, validate_job, validate_repo

PATH = "jobs/report.toml"
LINES = {
    "description": 1,
    "owner": 2,
    "schedule": 3,
    "user": 4,
    "command": 5,
    "timezone": 6,
    "shell": 7,
    "workdir": 8,
    "secrets": 9,
    "secrets.DB": 10,
    "env": 11,
    "reason": 12,
    "enabled": 13,
    "hosts": 14,
    "groups": 15,
    "success": 16,
    "success.check": 17,
}


def make_job(**changes: Any) -> Job:
    """A valid job; ``changes`` replace fields."""
    job = Job(
        name="report",
        file=PATH,
        description="Daily report",
        owner="data-team@example.com",
        schedule="30 3 * * *",
        user="batch",
        command=("scripts/report.sh", "--daily"),
        lines=LINES,
    )
    return dataclasses.replace(job, **changes)


def problems_of(job: Job, host: Optional[HostContext] = None) -> list[Problem]:
    return validate_job(job, host)


def one_problem(job: Job, host: Optional[HostContext] = None) -> Problem:
    problems = problems_of(job, host)
    assert len(problems) == 1, [p.format() for p in problems]
    return problems[0]


def assert_problem(problem: Problem, field: str, *fragments: str, severity: str = ERROR) -> None:
    assert problem.file == PATH
    assert problem.field == field
    assert problem.line == job_line(field)
    assert problem.severity == severity
    assert problem.message
    for fragment in fragments:
        assert fragment in problem.message
    assert problem.format().startswith(f"{PATH}:{problem.line}: ")


def job_line(field: str) -> Optional[int]:
    while field:
        if field in LINES:
            return LINES[field]
        field = field.rpartition(".")[0]
    return None


def test_valid_job_has_no_problems() -> None:
    assert problems_of(make_job()) == []
    assert problems_of(make_job(), HostContext("batch-1")) == []


# --- schedule and zone ------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("0 0 * 13 *", "month: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 30 feb *", "never fires"),
        ("0 0 * * mon-sun", "reversed range"),
        ("0 0 * * 6-1", "reversed range"),
        ("*/0 * * * *", "step 0"),
        ("0 0 * * * *", "expected 5 fields"),
        ("0 0 * * *  root /bin/true", "got 7"),
        ("0 0 * *", "got 4"),
        ("", "empty"),
        ("@dayly", "did you mean @daily?"),
        ("0 0 15W * *", "'L'/'W'"),
        ("0 0 * * mon#1", "'#'"),
        ("0\t0 * * *", "control character"),
        ("0 0 * * lun", "unknown name 'lun'"),
    ],
)
def test_schedule_errors_surfaced_with_the_field(schedule: str, fragment: str) -> None:
    problem = one_problem(make_job(schedule=schedule))
    assert_problem(problem, "schedule", fragment, f"{schedule!r}: ")


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "*/15 9-17 * * mon-fri",
        "0 0 29 2 *",
        "0 0 31 2 1",
        "@reboot",
        "@daily",
        "0 0 * * sun,7",
        "0 0 * * 5-7",
        "5 4 1,15 jan-jun/2 *",
    ],
)
def test_good_schedules(schedule: str) -> None:
    assert problems_of(make_job(schedule=schedule)) == []


def test_schedule_with_a_huge_number_is_a_problem_not_a_crash() -> None:
    # int() refuses strings of more than 4300 digits with a ValueError
    for schedule in ("9" * 5000 + " * * * *", "*/" + "7" * 5000 + " * * * *"):
        problem = one_problem(make_job(schedule=schedule))
        assert problem.field == "schedule"


@pytest.mark.parametrize(
    "zone",
    ["Mars/Olympus", "Asia/Tokio", "UTC ", "../etc/passwd", "/usr/share/zoneinfo/UTC", "Asia", ""],
)
def test_unknown_time_zone(zone: str) -> None:
    problem = one_problem(make_job(timezone=zone))
    assert_problem(problem, "timezone", f"unknown time zone {zone!r}", "IANA")


@pytest.mark.parametrize(
    "zone", ["Asia/Tokyo", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT-14"]
)
def test_known_time_zone(zone: str) -> None:
    assert problems_of(make_job(timezone=zone)) == []


def test_schedule_and_zone_problems_both_reported() -> None:
    problems = problems_of(make_job(schedule="61 * * * *", timezone="Nowhere/City"))
    assert [p.field for p in problems] == ["schedule", "timezone"]


# --- command, shell, paths ----------------------------------------------------------


def test_command_and_shell_both_set() -> None:
    problem = one_problem(make_job(shell="ls | wc -l"))
    assert_problem(problem, "command", "exactly one of command", "sets both")


def test_neither_command_nor_shell() -> None:
    problem = one_problem(make_job(command=()))
    assert_problem(problem, "command", "exactly one of command", "sets neither")


def test_shell_alone_is_fine() -> None:
    assert problems_of(make_job(command=(), shell="find /tmp -mtime +1 -delete")) == []


@pytest.mark.parametrize(
    ("program", "fragment"),
    [
        ("/usr/local/bin/report", "is an absolute path"),
        ("../report.sh", "'..'"),
        ("scripts/../../report.sh", "'..'"),
        ("scripts/..", "'..'"),
        ("~/bin/report", "home directory"),
        ("~batch/report", "home directory"),
        ("python3 report.py", "contains spaces"),
        ("report\tnow", "contains spaces"),
    ],
)
def test_program_path_problems(program: str, fragment: str) -> None:
    message = program_path_problem(program)
    assert message is not None and fragment in message
    problem = one_problem(make_job(command=(program, "--daily")))
    assert_problem(problem, "command", fragment)


@pytest.mark.parametrize(
    "program",
    [
        "python3",
        "scripts/report.sh",
        "./scripts/report.sh",
        "scripts/a..b.sh",
        "run-parts",
        "scripts/with space/x.sh",
        "..hidden",
    ],
)
def test_program_paths_accepted(program: str) -> None:
    assert program_path_problem(program) is None
    assert problems_of(make_job(command=(program,))) == []


def test_only_the_program_is_checked_not_its_arguments() -> None:
    assert problems_of(make_job(command=("python3", "/etc/x", "../y", "~/z", "a b"))) == []


@pytest.mark.parametrize(
    ("check", "fragment"),
    [
        ("/usr/bin/test", "absolute path"),
        ("../check.sh", "'..'"),
        ("~/check", "home"),
        ("check now", "spaces"),
    ],
)
def test_success_check_path_rules(check: str, fragment: str) -> None:
    job = make_job(success=dataclasses.replace(make_job().success, check=(check, "--x")))
    assert_problem(one_problem(job), "success.check", fragment)


def test_success_check_in_the_repository_is_fine() -> None:
    job = make_job(
        success=dataclasses.replace(make_job().success, check=("scripts/check.sh", "/abs/arg"))
    )
    assert problems_of(job) == []


@pytest.mark.parametrize("workdir", ["..", "../elsewhere", "scripts/../..", "a/../../b", "./../x"])
def test_workdir_escaping_the_repository(workdir: str) -> None:
    assert_problem(one_problem(make_job(workdir=workdir)), "workdir", "outside the repository")


@pytest.mark.parametrize("workdir", ["scripts", ".", "scripts/..", "/var/tmp", "/", "..x"])
def test_workdir_accepted(workdir: str) -> None:
    assert problems_of(make_job(workdir=workdir)) == []


# --- users and the host -------------------------------------------------------------


@pytest.mark.parametrize(
    "user", ["Root", "root evil", "9user", "a" * 33, "-x", "bätch", "", "batch\n", "user$x"]
)
def test_invalid_user_name(user: str) -> None:
    assert_problem(one_problem(make_job(user=user)), "user", "is not a valid user name")


@pytest.mark.parametrize("user", ["batch", "_svc", "www-data", "a" * 32, "machine$", "svc.etl"])
def test_valid_user_name(user: str) -> None:
    assert problems_of(make_job(user=user)) == []


def test_user_not_in_the_hosts_allowed_list() -> None:
    host = HostContext("batch-1", allowed_users=("batch", "etl"))
    problem = one_problem(make_job(user="root"), host)
    assert_problem(problem, "user", "'root' is not allowed on host batch-1", "allowed: batch, etl")
    assert problems_of(make_job(user="etl"), host) == []


def test_user_must_exist_on_the_host() -> None:
    host = HostContext("batch-1", existing_users=frozenset({"root", "batch"}))
    problem = one_problem(make_job(user="ghost"), host)
    assert_problem(
        problem, "user", "'ghost' does not exist on host batch-1", "ignore the whole file"
    )
    assert problems_of(make_job(user="batch"), host) == []


def test_existing_users_not_checked_without_host_or_list() -> None:
    job = make_job(user="ghost")
    assert problems_of(job) == []
    assert problems_of(job, HostContext("batch-1", existing_users=None)) == []


def test_empty_allowed_list_allows_any_user() -> None:
    assert problems_of(make_job(user="anyone"), HostContext("h", allowed_users=())) == []


# --- root and system users need to be allowed by name ---------------------------------

AGENT_TOML = "/etc/cronsync/agent.toml"
SYSTEM = frozenset({"root", "daemon"})  # uid below UID_MIN on this made-up host


def privileged_host(*allowed: str) -> HostContext:
    return HostContext(
        "batch-1",
        allowed_users=allowed,
        system_users=SYSTEM,
        uid_min=500,
        config_file=AGENT_TOML,
    )


def test_root_is_refused_without_an_allowed_list() -> None:
    problem = one_problem(make_job(user="root"), privileged_host())
    assert_problem(problem, "user", "'root' is refused on host batch-1", "users.allowed")
    assert AGENT_TOML in problem.message and "add 'root'" in problem.message
    assert "\n" not in problem.format()


def test_a_system_user_is_refused_and_the_uid_min_is_named() -> None:
    problem = one_problem(make_job(user="daemon"), privileged_host())
    assert_problem(problem, "user", "'daemon' is refused", "system user", "UID_MIN 500")
    assert "add 'daemon'" in problem.message


def test_root_and_system_users_named_in_the_allowed_list_run() -> None:
    host = privileged_host("root", "daemon", "batch")
    for user in ("root", "daemon", "batch"):
        assert problems_of(make_job(user=user), host) == []


def test_an_allowed_list_without_root_still_says_not_allowed() -> None:
    problem = one_problem(make_job(user="root"), privileged_host("batch"))
    assert_problem(problem, "user", "'root' is not allowed on host batch-1", "allowed: batch")


def test_ordinary_users_need_no_allowed_list() -> None:
    assert problems_of(make_job(user="batch"), privileged_host()) == []
    assert problems_of(make_job(user="ghost"), privileged_host()) == []  # uid unknown


def test_root_is_refused_by_name_when_the_hosts_uids_are_unknown() -> None:
    problem = one_problem(make_job(user="root"), HostContext("batch-1"))
    assert_problem(problem, "user", "'root' is refused on host batch-1", "agent.toml")
    assert problems_of(make_job(user="daemon"), HostContext("batch-1")) == []


def test_without_a_host_root_and_system_users_are_not_checked() -> None:
    # a repository's CI knows no host: its rules apply with validate --host and at sync
    for user in ("root", "daemon"):
        assert problems_of(make_job(user=user)) == []
    repo = JobRepo(Defaults(user="root", lines={"defaults.user": 3}), (make_job(user="root"),))
    assert validate_repo(repo) == []
    assert [(p.field, p.severity) for p in validate_repo(repo, privileged_host())] == [
        ("user", ERROR)
    ]


# --- enabled / reason ---------------------------------------------------------------


def test_disabled_without_reason_is_an_error() -> None:
    problem = one_problem(make_job(enabled=False))
    assert_problem(problem, "reason", "a disabled job needs a reason")


def test_disabled_with_reason_is_fine() -> None:
    assert problems_of(make_job(enabled=False, reason="replaced by report-v2")) == []


def test_reason_while_enabled_is_a_warning() -> None:
    problem = one_problem(make_job(reason="just because"))
    assert_problem(problem, "reason", "only used with enabled = false", severity=WARNING)
    assert problem.format() == f"{PATH}:12: warning: reason: {problem.message}"


# --- env, secrets -------------------------------------------------------------------


def test_env_and_secrets_overlap() -> None:
    job = make_job(
        env={"DB": "plain", "OTHER": "x"},
        secrets=(SecretRef("DB", "secretsmanager", "batch-prod/db"),),
    )
    assert_problem(one_problem(job), "secrets.DB", "DB is set in both env and secrets")


@pytest.mark.parametrize(
    "ref",
    [
        SecretRef("DB", "secretsmanager", "batch-prod/db"),
        SecretRef("DB", "secretsmanager", "batch-prod/db", "password"),
        SecretRef("DB", "secretsmanager", "a+b=c.d@e_f-g/h"),
        SecretRef(
            "DB",
            "secretsmanager",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:batch/db-AbCdEf",
        ),
        SecretRef(
            "DB",
            "secretsmanager",
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x",
        ),
        SecretRef("DB", "ssm", "/batch/prod/db-password"),
        SecretRef("DB", "ssm", "/a"),
    ],
)
def test_secret_reference_formats_accepted(ref: SecretRef) -> None:
    assert problems_of(make_job(secrets=(ref,))) == []


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        (SecretRef("DB", "secretsmanager", "batch prod/db"), "not a Secrets Manager name or ARN"),
        (SecretRef("DB", "secretsmanager", "batch:db"), "not a Secrets Manager name or ARN"),
        (SecretRef("DB", "secretsmanager", "a" * 513), "not a Secrets Manager name or ARN"),
        (
            SecretRef("DB", "secretsmanager", "arn:aws:secretsmanager:eu-west-1:1234:secret:x"),
            "name or ARN",
        ),
        (
            SecretRef("DB", "secretsmanager", "arn:aws:ssm:eu-west-1:123456789012:secret:x"),
            "name or ARN",
        ),
        (SecretRef("DB", "secretsmanager", "batch-prod/db", " "), "key must not be empty"),
        (SecretRef("DB", "ssm", "batch/prod/db"), "'ssm:batch/prod/db' is not a parameter path"),
        (SecretRef("DB", "ssm", ""), "is not a parameter path"),
        (SecretRef("DB", "ssm", "/with space"), "is not a parameter path"),
        (SecretRef("DB", "ssm", "/" + "a" * 1011), "is not a parameter path"),
    ],
)
def test_secret_reference_formats_rejected(ref: SecretRef, fragment: str) -> None:
    assert_problem(one_problem(make_job(secrets=(ref,))), "secrets.DB", fragment)


def test_each_bad_secret_reported() -> None:
    job = make_job(secrets=(SecretRef("A", "ssm", "x"), SecretRef("B", "secretsmanager", "b c")))
    assert [p.field for p in problems_of(job)] == ["secrets.A", "secrets.B"]


# --- targeting ----------------------------------------------------------------------

HOST = HostContext("batch-eu-1", groups=("eu", "prod"))


@pytest.mark.parametrize(
    ("hosts", "groups", "expected"),
    [
        ((), (), True),
        (("batch-eu-1",), (), True),
        (("batch-eu-*",), (), True),
        (("batch-??-1",), (), True),
        (("batch-[a-f]u-1",), (), True),
        (("batch-us-*",), (), False),
        (("BATCH-EU-1",), (), False),  # host names are matched case-sensitively
        (("batch-eu",), (), False),  # a pattern matches the whole name
        ((), ("eu",), True),
        ((), ("us",), False),
        ((), ("EU",), False),
        (("batch-us-*",), ("prod",), True),  # hosts OR groups
        (("batch-eu-1",), ("us",), True),
        (("batch-us-*",), ("us",), False),
    ],
)
def test_is_targeted(hosts: tuple[str, ...], groups: tuple[str, ...], expected: bool) -> None:
    assert is_targeted(make_job(hosts=hosts, groups=groups), HOST) is expected


def test_targeting_patterns_are_not_errors() -> None:
    job = make_job(hosts=("batch-*", "b?", "[!x]*"), groups=("eu", "prod_1.a-b"))
    assert problems_of(job) == []


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("hosts", ("batch 1",), "'batch 1' is not a host name pattern"),
        ("hosts", ("batch/1",), "is not a host name pattern"),
        ("groups", ("e u",), "'e u' is not a group name"),
        ("groups", ("eu*",), "is not a group name"),
    ],
)
def test_invalid_targets(field: str, value: tuple[str, ...], fragment: str) -> None:
    assert_problem(one_problem(make_job(**{field: value})), field, fragment)


# --- whole repository ---------------------------------------------------------------


def test_validate_repo_collects_every_jobs_problems_in_job_order() -> None:
    first = make_job(name="a", schedule="61 * * * *")
    second = make_job(name="b", user="Root", enabled=False)
    repo = JobRepo(Defaults(), (first, second, make_job(name="c")))
    problems = validate_repo(repo)
    assert [p.field for p in problems] == ["schedule", "user", "reason"]


def test_validate_repo_checks_defaults() -> None:
    repo = JobRepo(Defaults(user="Bad User", timezone="Nowhere/Land"), ())
    problems = validate_repo(repo, config_path="cronsync.toml")
    assert [(p.file, p.field) for p in problems] == [
        ("cronsync.toml", "defaults.timezone"),
        ("cronsync.toml", "defaults.user"),
    ]
    assert all(p.severity == ERROR for p in problems)


def test_validate_repo_passes_the_host_on() -> None:
    repo = JobRepo(Defaults(), (make_job(user="ghost"),))
    host = HostContext("batch-1", existing_users=frozenset({"batch"}))
    assert validate_repo(repo) == []
    assert [p.field for p in validate_repo(repo, host)] == ["user"]


def test_problems_from_parsed_files_carry_the_written_line() -> None:
    text = (
        "\n".join(
            [
                'description = "d"',
                'owner = "o"',
                'user = "batch"',
                'command = ["/usr/bin/report"]',
                "",
                'schedule = "0 0 31 2 *"',
                'timezone = "Mars/Olympus"',
                "[secrets]",
                'DB = "ssm:relative"',
            ]
        )
        + "\n"
    )
    repo, problems = parse_repo(None, [SourceFile("jobs/x.toml", text)])
    assert problems == []
    found = [p.format().split(": ")[0:2] for p in validate_repo(repo)]
    assert found == [
        ["jobs/x.toml:6", "schedule"],
        ["jobs/x.toml:7", "timezone"],
        ["jobs/x.toml:4", "command"],
        ["jobs/x.toml:9", "secrets.DB"],
    ]


@pytest.mark.parametrize("field", ["description", "owner"])
def test_todo_placeholders_left_by_import_are_errors(field: str) -> None:
    job = make_job(**{field: "TODO: fill me in (imported from /etc/crontab:3)"})
    problems = [p for p in validate_job(job) if p.field == field]
    assert len(problems) == 1 and "placeholder" in problems[0].message
    assert not [p for p in validate_job(make_job()) if p.field == field]


JOB_RELYING_ON_DEFAULTS = 'description = "d"\nowner = "o"\nschedule = "@daily"\nshell = "true"\n'


def test_a_bad_default_is_said_once_at_cronsync_toml_not_once_per_job() -> None:
    config = SourceFile(
        "cronsync.toml", '[defaults]\nuser = 5\ntimezone = "Mars/Base"\ntimeout = "1h"\n'
    )
    jobs = [SourceFile(f"jobs/j{n}.toml", JOB_RELYING_ON_DEFAULTS) for n in range(3)]
    repo, problems = parse_repo(config, jobs)
    problems += validate_repo(repo)
    assert [p.format() for p in problems] == [
        "cronsync.toml:2: defaults.user: expected a string, got an integer (5)",
        "cronsync.toml:3: defaults.timezone: unknown time zone 'Mars/Base' (use an IANA name "
        "such as 'Asia/Tokyo'; every job without its own timezone uses it)",
    ]
    assert repo.defaults.timeout_seconds == 3600  # the good defaults still apply


def test_a_job_with_its_own_bad_zone_or_user_is_told_so_itself() -> None:
    config = SourceFile("cronsync.toml", '[defaults]\nuser = "Bad User"\ntimezone = "Nowhere/X"\n')
    own = JOB_RELYING_ON_DEFAULTS + 'user = "Also Bad"\ntimezone = "Mars/Base"\n'
    repo, problems = parse_repo(
        config,
        [
            SourceFile("jobs/own.toml", own),
            SourceFile("jobs/inherits.toml", JOB_RELYING_ON_DEFAULTS),
        ],
    )
    found = [p.format().split(": ")[0:2] for p in problems + validate_repo(repo)]
    assert sorted(found) == [
        ["cronsync.toml:2", "defaults.user"],
        ["cronsync.toml:3", "defaults.timezone"],
        ["jobs/own.toml:5", "user"],
        ["jobs/own.toml:6", "timezone"],
    ]
