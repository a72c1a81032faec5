"""Job files and cronsync.toml -> model: types, keys, names, defaults, every problem located.

Covers ``cronsync.core.manifest`` (parse_job, parse_repo, parse_defaults) and
``cronsync.core.tomlcheck`` (locate_keys, parse_toml, check_table).
"""

from __future__ import annotations

from typing import Optional

import pytest

from cronsync.core import schema
from cronsync.core.manifest import SourceFile, parse_defaults, parse_job, parse_repo
from cronsync.core.model import Defaults, Job, Problem, SecretRef, SuccessSpec
from cronsync.core.tomlcheck import check_table, locate_keys, parse_toml

PATH = "jobs/nightly-aggregate.toml"

# The job file every test starts from. Two comment lines first, so that line numbers
# are not accidentally 1-based positions of the keys.
BASE = {
    "description": '"Aggregate yesterday\'s reviews"',
    "owner": '"data-team@example.com"',
    "schedule": '"30 3 * * *"',
    "user": '"batch"',
    "command": '["scripts/nightly-aggregate.sh", "--date", "yesterday"]',
}
HEADER = ["# nightly aggregate", "# owned by the data team"]
LINE = {key: number for number, key in enumerate(BASE, len(HEADER) + 1)}
NEXT_LINE = len(HEADER) + len(BASE) + 1  # first line of the extra lines


def job_toml(*extra: str, omit: tuple[str, ...] = (), **values: str) -> str:
    """Return a job file: BASE with ``values`` replacing keys in place, then ``extra``."""
    fields = {**BASE, **values}
    lines = [*HEADER, *(f"{key} = {value}" for key, value in fields.items() if key not in omit)]
    return "\n".join([*lines, *extra]) + "\n"


def parse(text: str, path: str = PATH, defaults: Optional[Defaults] = None):
    return parse_job(SourceFile(path, text), defaults or Defaults())


def parse_ok(text: str, path: str = PATH, defaults: Optional[Defaults] = None) -> Job:
    job, problems = parse(text, path, defaults)
    assert problems == []
    assert job is not None
    return job


def one_problem(text: str, path: str = PATH, defaults: Optional[Defaults] = None) -> Problem:
    job, problems = parse(text, path, defaults)
    assert job is None
    assert len(problems) == 1, [p.format() for p in problems]
    return problems[0]


def assert_located(problem: Problem, line: Optional[int], field: str, *fragments: str) -> None:
    assert problem.file == PATH
    assert problem.line == line
    assert problem.field == field
    where = PATH if line is None else f"{PATH}:{line}"
    subject = f"{field}: " if field else ""
    assert problem.format() == f"{where}: {subject}{problem.message}"
    for fragment in fragments:
        assert fragment in problem.message


# --- every key of the schema, with good values ------------------------------------

GOOD_VALUES = {
    "description": '"Aggregate yesterday\'s reviews into the ranking tables"',
    "owner": '"data-team@example.com"',
    "schedule": '"30 3 * * *"',
    "timezone": '"Asia/Tokyo"',
    "command": '["scripts/nightly-aggregate.sh", "--date", "yesterday"]',
    "shell": '"find /var/tmp/exports -type f -mtime +14 -delete"',
    "user": '"batch"',
    "workdir": '"scripts"',
    "env": '{ RAILS_ENV = "production", EMPTY = "" }',
    "secrets": '{ DB_PASSWORD = { secret = "batch-prod/db", key = "password" } }',
    "timeout": '"45m"',
    "concurrency": '"replace"',
    "jitter": '"2m"',
    "enabled": "false",
    "reason": '"Replaced by the new pipeline"',
    "hosts": '["batch-1", "batch-eu-*"]',
    "groups": '["eu"]',
    "run_on": '"one-host"',
    "fleet_unreachable": '"run"',
    "success": '{ within = "26h", check = ["scripts/check-aggregate.sh"] }',
    "migration": '{ verified_by = "ana@example.com", verified_on = "2026-12-07" }',
}


def test_good_values_cover_every_job_field() -> None:
    assert set(GOOD_VALUES) == {item.name for item in schema.JOB_FIELDS}
    success = {item.name for item in schema.SUCCESS_FIELDS}
    assert success == {"within", "check"}


def test_every_job_field_accepted_with_a_good_value() -> None:
    text = "\n".join(f"{key} = {value}" for key, value in GOOD_VALUES.items()) + "\n"
    job = parse_ok(text)
    assert job == Job(
        name="nightly-aggregate",
        file=PATH,
        description="Aggregate yesterday's reviews into the ranking tables",
        owner="data-team@example.com",
        schedule="30 3 * * *",
        user="batch",
        timezone="Asia/Tokyo",
        command=("scripts/nightly-aggregate.sh", "--date", "yesterday"),
        shell="find /var/tmp/exports -type f -mtime +14 -delete",
        workdir="scripts",
        env={"EMPTY": "", "RAILS_ENV": "production"},
        secrets=(SecretRef("DB_PASSWORD", "secretsmanager", "batch-prod/db", "password"),),
        timeout_seconds=45 * 60,
        concurrency="replace",
        jitter_seconds=120,
        enabled=False,
        reason="Replaced by the new pipeline",
        hosts=("batch-1", "batch-eu-*"),
        groups=("eu",),
        run_on="one-host",
        fleet_unreachable="run",
        success=SuccessSpec(26 * 3600, ("scripts/check-aggregate.sh",)),
        verified_by="ana@example.com",
        verified_on="2026-12-07",
    )
    # each key's line is remembered for later checks
    for number, key in enumerate(GOOD_VALUES, 1):
        assert job.line_of(key) == number
    assert job.line_of("success.within") == job.line_of("success")


def test_minimal_job_gets_documented_defaults() -> None:
    job = parse_ok(job_toml())
    assert job.name == "nightly-aggregate"
    assert job.timezone is None
    assert job.shell is None and job.workdir is None
    assert job.env == {} and job.secrets == ()
    assert job.timeout_seconds is None
    assert job.concurrency == "forbid"
    assert job.jitter_seconds == 0
    assert job.enabled is True and job.reason is None
    assert job.hosts == () and job.groups == ()
    assert job.success == SuccessSpec()


def test_schedule_surrounding_blanks_are_stripped() -> None:
    assert parse_ok(job_toml(schedule='"  30 3 * * * "')).schedule == "30 3 * * *"


def test_success_as_a_table_section() -> None:
    job = parse_ok(job_toml("[success]", 'within = "1d"', 'check = ["scripts/check.sh"]'))
    assert job.success == SuccessSpec(86400, ("scripts/check.sh",))
    assert job.line_of("success") == NEXT_LINE
    assert job.line_of("success.check") == NEXT_LINE + 2


# --- TOML syntax ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (job_toml(schedule='"30 3 * * *'), LINE["schedule"]),  # unterminated string
        (job_toml('= "orphan value"'), NEXT_LINE),
        (job_toml("timeout ="), NEXT_LINE),
        (job_toml('owner = "twice"'), NEXT_LINE),  # a key defined twice
        (job_toml("[success]", 'within = "1h"', "[success]"), NEXT_LINE + 2),
    ],
)
def test_toml_syntax_error_is_one_problem_at_the_decoders_line(text: str, line: int) -> None:
    problem = one_problem(text)
    assert_located(problem, line, "", "invalid TOML")
    assert "(at line" not in problem.message  # the position is in the line, not repeated


def test_syntax_error_and_bad_name_are_both_reported() -> None:
    _job, problems = parse('schedule = "x', path="jobs/Bad.toml")
    assert [p.message.split(" ")[0:2] for p in problems] == [
        ["invalid", "job"],
        ["invalid", "TOML:"],
    ]


# --- wrong types ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("schedule", "30", "expected a string, got an integer (30)"),
        ("schedule", '["30 3 * * *"]', "expected a string, got a list"),
        ("description", "{ text = 'x' }", "expected a string, got a table"),
        ("owner", "true", "expected a string, got a boolean"),
        ("user", "1000", "expected a string, got an integer"),
        ("command", '"scripts/x.sh --flag"', "expected a non-empty list of strings, got a string"),
        ("command", "[]", "expected a non-empty list of strings, got a list"),
        ("command", '["scripts/x.sh", 2]', "every item must be a string, got an integer (2)"),
        ("command", '[["a"]]', "every item must be a string, got a list"),
        ("command", '["", "x"]', "the program (first item) must not be empty"),
        ("command", '{ program = "x" }', "expected a non-empty list of strings, got a table"),
    ],
)
def test_wrong_type_in_a_base_field(key: str, value: str, fragment: str) -> None:
    problem = one_problem(job_toml(**{key: value}))
    assert_located(problem, LINE[key], key, fragment)


@pytest.mark.parametrize(
    ("line", "field", "fragment"),
    [
        ("enabled = 'no'", "enabled", "expected true or false, got a string"),
        ("enabled = 0", "enabled", "expected true or false, got an integer"),
        ("timeout = 45", "timeout", 'expected a duration string such as "45m", got an integer'),
        ("jitter = 1.5", "jitter", "got a number"),
        ("hosts = 'batch-1'", "hosts", "expected a list of strings, got a string"),
        ("groups = [1]", "groups", "item 1: expected a string, got an integer"),
        ("hosts = ['']", "hosts", "must not be empty"),
        ("success = 'always'", "success", "expected a table, got a string"),
        ("success = ['26h']", "success", "expected a table, got a list"),
        ("env = ['A=1']", "env", "expected a table"),
        ("secrets = 'batch-prod/db'", "secrets", "expected a table of NAME = reference"),
        ("concurrency = 1", "concurrency", "is not one of forbid, allow, replace"),
        ("timezone = 9", "timezone", "expected a string, got an integer"),
        ("shell = ['ls']", "shell", "expected a string, got a list"),
        ("reason = false", "reason", "expected a string, got a boolean"),
        ("workdir = ''", "workdir", "must not be empty"),
        ("description2 = 1", "description2", "unknown key (did you mean 'description'?)"),
    ],
)
def test_wrong_type_in_an_optional_field(line: str, field: str, fragment: str) -> None:
    problem = one_problem(job_toml(line))
    assert_located(problem, NEXT_LINE, field, fragment)


@pytest.mark.parametrize(
    ("lines", "field", "line", "fragment"),
    [
        (["[success]", "within = 26"], "success.within", 1, "expected a duration string"),
        (["[success]", "check = 'x.sh'"], "success.check", 1, "non-empty list of strings"),
        (["success.within = '26 hours'"], "success.within", 0, "is not a duration"),
        (["[env]", "A = 'x'", "B = 1"], "env.B", 2, "expected a string, got an integer"),
        (["[env]", "A = { b = 'c' }"], "env.A", 1, "expected a string, got a table"),
    ],
)
def test_wrong_type_inside_a_table(lines: list[str], field: str, line: int, fragment: str) -> None:
    problem = one_problem(job_toml(*lines))
    assert_located(problem, NEXT_LINE + line, field, fragment)


def test_inline_table_problem_is_located_at_its_key() -> None:
    problem = one_problem(job_toml("", "success = { within = 'soon' }"))
    assert_located(problem, NEXT_LINE + 1, "success.within", "is not a duration")


# --- unknown keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "field", "line", "hint"),
    [
        (['schedul = "30 3 * * *"'], "schedul", 0, "schedule"),
        (["[sucess]", 'within = "26h"'], "sucess", 0, "success"),
        (['sucess = { within = "26h" }'], "sucess", 0, "success"),
        (["[success]", 'whithin = "26h"'], "success.whithin", 1, "within"),
        (['concurency = "forbid"'], "concurency", 0, "concurrency"),
        (['timout = "1h"'], "timout", 0, "timeout"),
        (["[env]", 'A = "1"', "[secret]", 'B = "x"'], "secret", 2, "secrets"),
    ],
)
def test_unknown_key_with_did_you_mean(lines: list[str], field: str, line: int, hint: str) -> None:
    problem = one_problem(job_toml(*lines))
    assert_located(problem, NEXT_LINE + line, field, "unknown key", f"did you mean {hint!r}?")


def test_unknown_key_without_a_close_match_has_no_hint() -> None:
    problem = one_problem(job_toml('xyzzy = "1"'))
    assert_located(problem, NEXT_LINE, "xyzzy", "unknown key")
    assert "did you mean" not in problem.message


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    _job, problems = parse(job_toml('schedul = "x"', "enabled = 1", omit=("owner",)))
    assert {(p.field, p.line) for p in problems} == {
        ("schedul", NEXT_LINE - 1),
        ("enabled", NEXT_LINE),
        ("owner", None),
    }


# --- required keys ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["description", "owner", "schedule", "user"])
def test_missing_required_key(key: str) -> None:
    problem = one_problem(job_toml(omit=(key,)))
    assert_located(problem, None, key, "required")


def test_missing_user_points_at_the_defaults() -> None:
    problem = one_problem(job_toml(omit=("user",)))
    assert "cronsync.toml [defaults]" in problem.message


def test_missing_user_satisfied_by_defaults_user() -> None:
    job = parse_ok(job_toml(omit=("user",)), defaults=Defaults(user="etl"))
    assert job.user == "etl"


def test_job_user_wins_over_defaults_user() -> None:
    assert parse_ok(job_toml(), defaults=Defaults(user="etl")).user == "batch"


def test_defaults_user_only_satisfies_user() -> None:
    problem = one_problem(job_toml(omit=("owner",)), defaults=Defaults(user="etl"))
    assert problem.field == "owner"


def test_missing_user_satisfied_through_parse_repo() -> None:
    config = SourceFile("cronsync.toml", '[defaults]\nuser = "etl"\n')
    repo, problems = parse_repo(config, [SourceFile(PATH, job_toml(omit=("user",)))])
    assert problems == []
    assert [job.user for job in repo.jobs] == ["etl"]


# --- job names --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "jobs/Bad.Name.toml",
        "jobs/9x.toml",
        "jobs/" + "a" * 65 + ".toml",
        "jobs/-x.toml",
        "jobs/x y.toml",
        "jobs/UPPER.toml",
        "jobs/.toml",
    ],
)
def test_invalid_job_name(path: str) -> None:
    job, problems = parse(job_toml(), path=path)
    assert job is None
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.file, problem.line, problem.field) == (path, None, "")
    assert problem.message.startswith("invalid job name")
    assert problem.format() == f"{path}: {problem.message}"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("jobs/a.toml", "a"),
        ("jobs/team/x_1-y.toml", "x_1-y"),
        ("jobs/" + "a" * 64 + ".toml", "a" * 64),
    ],
)
def test_valid_job_name_is_the_file_name(path: str, name: str) -> None:
    job = parse_ok(job_toml(), path=path)
    assert (job.name, job.file) == (name, path)


def test_duplicate_job_name_in_two_folders() -> None:
    first = SourceFile("jobs/data/report.toml", job_toml())
    second = SourceFile("jobs/ops/report.toml", job_toml(owner='"ops"'))
    for order in ([first, second], [second, first]):
        repo, problems = parse_repo(None, order)
        assert len(problems) == 1
        problem = problems[0]
        assert (problem.file, problem.field) == ("jobs/ops/report.toml", "")
        assert "duplicate job name 'report'" in problem.message
        assert "jobs/data/report.toml" in problem.message
        assert [(job.name, job.file) for job in repo.jobs] == [("report", first.path)]


def test_parse_repo_keeps_good_jobs_and_orders_by_path() -> None:
    files = [
        SourceFile("jobs/zeta.toml", job_toml()),
        SourceFile("jobs/broken.toml", job_toml("enabled = 'yes'")),
        SourceFile("jobs/alpha.toml", job_toml()),
    ]
    repo, problems = parse_repo(None, files)
    assert [job.name for job in repo.jobs] == ["alpha", "zeta"]
    assert [(p.file, p.field) for p in problems] == [("jobs/broken.toml", "enabled")]


# --- env and secrets --------------------------------------------------------------


@pytest.mark.parametrize("name", ['"BAD-NAME"', '"1ABC"', '"A B"', '"Ä"', '""'])
def test_invalid_env_name(name: str) -> None:
    problem = one_problem(job_toml("[env]", 'OK = "1"', f'{name} = "x"'))
    assert problem.field == f"env.{name.strip(chr(34))}"
    assert problem.line == NEXT_LINE + 2
    assert "not a valid environment variable name" in problem.message


def test_env_value_with_nul_rejected() -> None:
    problem = one_problem(job_toml("[env]", 'A = "x\\u0000y"'))
    assert_located(problem, NEXT_LINE + 1, "env.A", "NUL")


def test_env_names_and_values_kept_sorted() -> None:
    job = parse_ok(job_toml("[env]", 'ZED = "z"', 'ALPHA = "a b "', "_under = ''"))
    assert list(job.env.items()) == [("ALPHA", "a b "), ("ZED", "z"), ("_under", "")]


def test_secret_references_of_all_three_forms() -> None:
    job = parse_ok(
        job_toml(
            "[secrets]",
            'SSM_VALUE = "ssm:/batch/prod/value"',
            'DB_PASSWORD = { secret = "batch-prod/db", key = "password" }',
            'API_TOKEN = "batch-prod/api-token"',
            'WHOLE = { secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbC" }',
        )
    )
    assert job.secrets == (
        SecretRef("API_TOKEN", "secretsmanager", "batch-prod/api-token", None),
        SecretRef("DB_PASSWORD", "secretsmanager", "batch-prod/db", "password"),
        SecretRef("SSM_VALUE", "ssm", "/batch/prod/value", None),
        SecretRef(
            "WHOLE",
            "secretsmanager",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbC",
            None,
        ),
    )
    assert job.line_of("secrets.DB_PASSWORD") == NEXT_LINE + 2


@pytest.mark.parametrize(
    ("ref", "field", "fragment"),
    [
        (
            '{ secret = "batch-prod/db", kee = "password" }',
            "secrets.DB.kee",
            "unknown key (did you mean 'key'?)",
        ),
        ('{ key = "password" }', "secrets.DB", 'missing "secret"'),
        ("{}", "secrets.DB", 'missing "secret"'),
        ("{ secret = 5 }", "secrets.DB.secret", "expected a string, got an integer"),
        ('{ secret = "x", key = "" }', "secrets.DB.key", "must not be empty"),
        ('{ secret = "x\\ny" }', "secrets.DB.secret", "line break"),
        ('""', "secrets.DB", "must not be empty"),
        ("42", "secrets.DB", "expected a string, got an integer"),
        ('["batch-prod/db"]', "secrets.DB", 'a secret reference is "name", "ssm:/path"'),
        ('"batch-prod/db\\r"', "secrets.DB", "line break"),
    ],
)
def test_malformed_secret_reference(ref: str, field: str, fragment: str) -> None:
    problem = one_problem(job_toml("[secrets]", f"DB = {ref}"))
    assert_located(problem, NEXT_LINE + 1, field, fragment)


def test_secret_table_with_typo_reports_typo_and_missing_secret() -> None:
    _job, problems = parse(job_toml("[secrets]", 'DB = { secrt = "batch-prod/db" }'))
    assert [(p.field, p.line) for p in problems] == [
        ("secrets.DB.secrt", NEXT_LINE + 1),
        ("secrets.DB", NEXT_LINE + 1),
    ]
    assert "did you mean 'secret'?" in problems[0].message


def test_invalid_secret_env_name() -> None:
    problem = one_problem(job_toml("[secrets]", '"db-password" = "batch-prod/db"'))
    assert_located(problem, NEXT_LINE + 1, "secrets.db-password", "environment variable name")


# --- control characters -----------------------------------------------------------

CONTROL = {
    "\\r": "line break or control character",
    "\\n": "line break or control character",
    "\\u0000": "NUL",
    "\\u001b": "control character",
    "\\u007f": "control character",
}


@pytest.mark.parametrize("key", ["schedule", "user", "owner"])
@pytest.mark.parametrize("char", sorted(CONTROL))
def test_control_character_in_a_single_line_field(key: str, char: str) -> None:
    value = BASE[key][:-1] + char + 'x"'
    problem = one_problem(job_toml(**{key: value}))
    assert_located(problem, LINE[key], key, CONTROL[char])
    if char != "\\u0000":
        assert "it would break the crontab" in problem.message


@pytest.mark.parametrize("key", ["timezone", "shell", "workdir"])
def test_line_break_in_other_single_line_fields(key: str) -> None:
    problem = one_problem(job_toml(f'{key} = "a\\nb"'))
    assert_located(problem, NEXT_LINE, key, "it would break the crontab")


def test_line_break_in_a_hosts_item() -> None:
    problem = one_problem(job_toml('hosts = ["batch-1", "evil\\n* * * * * root sh"]'))
    assert_located(problem, NEXT_LINE, "hosts", "line break")


def test_tab_is_not_a_line_break_for_owner() -> None:
    assert parse_ok(job_toml(owner='"data\\tteam"')).owner == "data\tteam"


def test_multi_line_description_and_reason_allowed() -> None:
    text = job_toml(
        "reason = '''",
        "Retired on 2025-04-01.",
        "Replaced by nightly-v2.'''",
        "enabled = false",
        description='"""\nAggregates reviews.\\r\nSecond paragraph.\n"""',
    )
    job = parse_ok(text)
    assert job.description == "Aggregates reviews.\r\nSecond paragraph.\n"
    assert job.reason == "Retired on 2025-04-01.\nReplaced by nightly-v2."
    # keys after a multi-line string keep their real line
    assert job.line_of("owner") == LINE["owner"] + 3
    assert job.line_of("enabled") == NEXT_LINE + 3 + 3


def test_nul_in_description_still_rejected() -> None:
    problem = one_problem(job_toml(description='"a\\u0000b"'))
    assert_located(problem, LINE["description"], "description", "NUL")


def test_blank_description_rejected() -> None:
    problem = one_problem(job_toml(description='"""\n  \n"""'))
    assert_located(problem, LINE["description"], "description", "must not be empty")


# --- durations --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ('"45m"', 2700),
        ('"1h30m"', 5400),
        ('"0"', 0),
        ('"90s"', 90),
        ('"2d"', 172800),
        ('"1w"', 604800),
        ('"1H 30M"', 5400),
        ('"0s"', 0),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    job = parse_ok(
        job_toml(f"timeout = {text}", f"jitter = {text}", "[success]", f"within = {text}")
    )
    assert job.timeout_seconds == seconds
    assert job.jitter_seconds == seconds
    assert job.success.within_seconds == seconds


@pytest.mark.parametrize(
    "text", ['"45 minutes"', '"45"', '"m"', '"-5m"', '""', '"1.5h"', '"1h30"', '"soon"']
)
def test_bad_duration(text: str) -> None:
    problem = one_problem(job_toml(f"timeout = {text}"))
    assert_located(problem, NEXT_LINE, "timeout", "is not a duration", '"45m"')


# --- enum -------------------------------------------------------------------------


def test_concurrency_enum_with_hint() -> None:
    problem = one_problem(job_toml('concurrency = "forbd"'))
    assert_located(
        problem,
        NEXT_LINE,
        "concurrency",
        "'forbd' is not one of forbid, allow, replace",
        "(did you mean 'forbid'?)",
    )


def test_concurrency_enum_without_close_match() -> None:
    problem = one_problem(job_toml('concurrency = "whenever"'))
    assert "did you mean" not in problem.message


@pytest.mark.parametrize("policy", schema.CONCURRENCY_POLICIES)
def test_every_concurrency_policy_accepted(policy: str) -> None:
    assert parse_ok(job_toml(f'concurrency = "{policy}"')).concurrency == policy


# --- cronsync.toml defaults -------------------------------------------------------

CONFIG = "cronsync.toml"
FULL_DEFAULTS = """\
# repository defaults
[defaults]
user = "etl"
timezone = "Asia/Tokyo"
timeout = "1h"
concurrency = "allow"
jitter = "30s"
"""


def test_no_config_means_empty_defaults() -> None:
    assert parse_defaults(None) == (Defaults(), [])
    assert parse_defaults(SourceFile(CONFIG, "")) == (Defaults(), [])
    assert parse_defaults(SourceFile(CONFIG, "[defaults]\n")) == (Defaults(), [])


def test_defaults_parsed() -> None:
    defaults, problems = parse_defaults(SourceFile(CONFIG, FULL_DEFAULTS))
    assert problems == []
    assert defaults == Defaults("etl", "Asia/Tokyo", 3600, "allow", 30)


def test_defaults_applied_to_jobs_that_do_not_set_them() -> None:
    config = SourceFile(CONFIG, FULL_DEFAULTS)
    plain = SourceFile("jobs/plain.toml", job_toml(omit=("user",)))
    own = SourceFile(
        "jobs/own.toml",
        job_toml(
            'timezone = "Europe/Paris"', 'timeout = "5m"', 'concurrency = "replace"', 'jitter = "0"'
        ),
    )
    repo, problems = parse_repo(config, [plain, own])
    assert problems == []
    by_name = {job.name: job for job in repo.jobs}
    assert repo.defaults == Defaults("etl", "Asia/Tokyo", 3600, "allow", 30)
    got = by_name["plain"]
    assert (got.user, got.timezone, got.timeout_seconds, got.concurrency, got.jitter_seconds) == (
        "etl",
        "Asia/Tokyo",
        3600,
        "allow",
        30,
    )
    got = by_name["own"]
    assert (got.user, got.timezone, got.timeout_seconds, got.concurrency, got.jitter_seconds) == (
        "batch",
        "Europe/Paris",
        300,
        "replace",
        0,
    )


@pytest.mark.parametrize(
    ("text", "field", "line", "fragment"),
    [
        ("[defaults]\nusr = 'etl'\n", "defaults.usr", 2, "did you mean 'user'?"),
        ("[default]\nuser = 'etl'\n", "default", 1, "did you mean 'defaults'?"),
        ("[defaults]\ntimeout = '1 hour'\n", "defaults.timeout", 2, "is not a duration"),
        ("[defaults]\nconcurrency = 'alow'\n", "defaults.concurrency", 2, "did you mean 'allow'?"),
        ('[defaults]\nuser = "a\\nb"\n', "defaults.user", 2, "line break"),
        ("defaults = 1\n", "defaults", 1, "expected a table"),
        ("\n[defaults\n", "", 2, "invalid TOML"),
    ],
)
def test_bad_defaults(text: str, field: str, line: int, fragment: str) -> None:
    defaults, problems = parse_defaults(SourceFile(CONFIG, text))
    assert defaults == Defaults()
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.file, problem.line, problem.field) == (CONFIG, line, field)
    assert fragment in problem.message


def test_bad_defaults_reported_by_parse_repo_with_the_jobs() -> None:
    repo, problems = parse_repo(
        SourceFile(CONFIG, "[defaults]\nuser = 1\n"), [SourceFile(PATH, job_toml())]
    )
    assert [(p.file, p.field) for p in problems] == [(CONFIG, "defaults.user")]
    assert [job.name for job in repo.jobs] == ["nightly-aggregate"]


# --- tomlcheck directly -----------------------------------------------------------


def test_locate_keys_tables_dotted_and_quoted_keys() -> None:
    text = "\n".join(
        [
            "# comment = not a key",
            'top = "x"',
            "",
            "dotted.inner = 1",
            '"quoted key" = 2',
            "[ table ]",
            "  a = 1",
            "  'b.c' = 2",
            "[table.sub]",
            "x.y = 3",
            "[[items]]",
            "name = 'one'",
            "[[items]]",
            "name = 'two'",
            "top = 'again'",
            "b=1",
        ]
    )
    assert locate_keys(text) == {
        "top": 2,
        "dotted.inner": 4,
        "quoted key": 5,
        "table": 6,
        "table.a": 7,
        "table.b.c": 8,
        "table.sub": 9,
        "table.sub.x.y": 10,
        "items": 11,
        "items.name": 12,
        "items.top": 15,
        "items.b": 16,
    }


def test_locate_keys_first_occurrence_wins() -> None:
    assert locate_keys("a = 1\n[t]\nx = 1\n[t]\nx = 2\n") == {"a": 1, "t": 2, "t.x": 3}


def test_locate_keys_counts_only_real_newlines() -> None:
    # U+2028 and U+0085 are allowed in TOML comments and strings; they are not
    # newlines for TOML, so they must not shift the line numbers
    text = "# note\u2028more\nowner = 'x\u2028y'\nschedul = 1\n# \x85\nuser = 2\n"
    assert locate_keys(text) == {"owner": 2, "schedul": 3, "user": 5}


def test_unknown_key_after_unicode_line_separator_has_the_right_line() -> None:
    text = job_toml("# see the wiki\u2028for details", 'schedul = "x"')
    problem = one_problem(text)
    assert_located(problem, NEXT_LINE + 1, "schedul", "unknown key")


def test_key_look_alike_inside_a_multi_line_string_does_not_move_the_key() -> None:
    text = (
        job_toml(
            omit=("owner",),
            description='"""\nWhat the report does.\nowner = the old batch server\n"""',
        )
        + "owner = 5\n"
    )
    problem = one_problem(text)
    assert_located(problem, NEXT_LINE + 3 - 1, "owner", "expected a string")


def test_parse_toml_success_returns_located_document() -> None:
    doc, problems = parse_toml("x.toml", "a = 1\n\n[t]\nb = 'c'\n")
    assert problems == []
    assert doc is not None
    assert doc.path == "x.toml"
    assert doc.data == {"a": 1, "t": {"b": "c"}}
    assert doc.lines == {"a": 1, "t": 3, "t.b": 4}
    assert doc.problem("t.b.deeper", "m") == Problem("x.toml", 4, "t.b.deeper", "m")
    assert doc.problem("nowhere", "m").line is None


def test_parse_toml_failure() -> None:
    doc, problems = parse_toml("x.toml", "a = 1\nb = [1,\nc = 2\n")
    assert doc is None
    assert len(problems) == 1
    assert problems[0].file == "x.toml"
    assert problems[0].line == 3
    assert problems[0].message.startswith("invalid TOML: ")


def test_check_table_against_a_custom_schema() -> None:
    fields = (
        schema.Field("name", schema.STRING, "n"),
        schema.Field("count", schema.INT, "c"),
        schema.Field("policy", schema.ENUM, "p", choices=("report", "revert")),
        schema.Field("sub", schema.TABLE, "s", fields=(schema.Field("on", schema.BOOL, "o"),)),
    )
    text = "name = 'x'\ncount = -1\npolicy = 'revrt'\nnmae = 1\n[sub]\non = 'yes'\nonn = 1\n"
    doc, _ = parse_toml("agent.toml", text)
    assert doc is not None
    problems = check_table(doc, doc.data, fields)
    assert [(p.field, p.line) for p in problems] == [
        ("count", 2),
        ("policy", 3),
        ("nmae", 4),
        ("sub.on", 6),
        ("sub.onn", 7),
    ]
    messages = [p.message for p in problems]
    assert "expected a whole number >= 0, got an integer (-1)" in messages[0]
    assert "did you mean 'revert'?" in messages[1]
    assert "did you mean 'name'?" in messages[2]
    assert "expected true or false" in messages[3]
    assert messages[4] == "unknown key (did you mean 'on'?)"
    good, _ = parse_toml(
        "agent.toml", "name = 'x'\ncount = 3\npolicy = 'revert'\n[sub]\non = true\n"
    )
    assert good is not None
    assert check_table(good, good.data, fields) == []


def test_check_table_bool_is_not_an_int() -> None:
    fields = (schema.Field("count", schema.INT, "c"),)
    doc, _ = parse_toml("agent.toml", "count = true\n")
    assert doc is not None
    assert [p.field for p in check_table(doc, doc.data, fields)] == ["count"]
