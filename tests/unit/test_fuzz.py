"""Property tests: no input text makes parsing or validation raise.

Whatever a job file or cronsync.toml contains, ``parse_job``/``parse_repo`` then
``validate_repo`` return problems (each with a file and a message) and never raise.
And whatever they accept renders into a crontab that cron and python-crontab accept.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Optional

from crontab import CronSlices
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cronsync.core import schema
from cronsync.core.manifest import REPO_CONFIG, SourceFile, parse_job, parse_repo
from cronsync.core.model import ERROR, WARNING, Defaults, HostContext, Problem
from cronsync.core.render import SourceInfo, plan_entries, render_crontab
from cronsync.core.validate import validate_repo

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SOME = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HUGE = "9" * 4400  # int() refuses more than 4300 digits
HOST = HostContext("batch-1", ("eu",), "UTC", (), frozenset({"batch", "root"}))
NOW = datetime(2025, 6, 15, 12, tzinfo=timezone.utc)
PATH = "jobs/fuzz.toml"

KEYS = [item.name for item in schema.JOB_FIELDS]
KEYS += [f"success.{item.name}" for item in schema.SUCCESS_FIELDS]
KEYS += [f"defaults.{item.name}" for item in schema.DEFAULTS_FIELDS]
KEYS += ["secret", "key", "RAILS_ENV", "DB", "schedul", "sucess", "whithin"]
FRAGMENTS = [
    "=",
    " = ",
    '"',
    "'",
    '"""',
    "'''",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "\x00",
    "\x1b",
    "\x7f",
    "\u2028",
    "\\",
    "\\n",
    "\\u0000",
    "[success]",
    "[env]",
    "[secrets]",
    "[defaults]",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1979-05-27T07:32:00Z",
    '"30 3 * * *"',
    '"* * * * *"',
    '"@reboot"',
    '"0 0 31 2 *"',
    '"*/0 * * * *"',
    '"45m"',
    '"1h30m"',
    '"0"',
    '"Asia/Tokyo"',
    '"batch"',
    '"root evil"',
    '"ssm:/x"',
    '"ssm:"',
    '"batch-prod/db"',
    '{ secret = "x", key = "k" }',
    '["scripts/x.sh"]',
    '["/bin/true"]',
    '["../x"]',
    "[]",
    '"forbid"',
    '"forbd"',
    '"x\\ny"',
    '"a\\u0000b"',
    f'"{HUGE} * * * *"',
    f'"*/{HUGE} * * * *"',
    f'"{HUGE}s"',
    HUGE,
]
toml_ish = st.lists(
    st.one_of(st.sampled_from(KEYS), st.sampled_from(FRAGMENTS), st.text(max_size=4)),
    max_size=40,
).map("".join)


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` (JSON escapes are TOML escapes)."""
    return json.dumps(text, ensure_ascii=False)


scalar_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "30 3 * * *",
            "*/5 * * * *",
            "@daily",
            "@reboot",
            "0 0 31 2 *",
            "0 8 1 * *",
            "mon-sun",
            "Asia/Tokyo",
            "America/New_York",
            "UTC",
            "Mars/Olympus",
            "batch",
            "root",
            "Root",
            "45m",
            "0",
            "bad",
            "forbid",
            "allow",
            "scripts/x.sh",
            "/usr/bin/x",
            "ssm:/a/b",
            "ssm:a",
            "x\ny",
            f"{HUGE} * * * *",
            f"0 */{HUGE} * * *",
            f"{HUGE}m",
        ]
    ),
)
toml_value = st.recursive(
    st.one_of(
        scalar_text.map(toml_string),
        st.integers(-10, 10**6).map(str),
        st.booleans().map(lambda flag: "true" if flag else "false"),
        st.sampled_from(["1.5", "nan", "-inf", "1979-05-27", "07:32:00"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(
            st.sampled_from(["secret", "key", "within", "check", "A", "x"]), inner, max_size=3
        ).map(lambda table: "{ " + ", ".join(f"{k} = {v}" for k, v in table.items()) + " }"),
    ),
    max_leaves=6,
)
job_key = st.sampled_from([*(item.name for item in schema.JOB_FIELDS), "schedul", "sucess"])

# Values of the right TOML type for each kind of field, so that the file parses and
# validation gets to see them; their content is arbitrary.
cron_token = st.sampled_from(
    [
        "*",
        "0",
        "5",
        "59",
        "60",
        "23",
        "31",
        "12",
        "7",
        "mon",
        "sun",
        "jan",
        "feb",
        "L",
        "5W",
        "1#2",
        "?",
        "",
        "-",
        "/",
        ",",
        "*/0",
        "*/15",
        "1-5",
        "5-1",
        "mon-sun",
        "sun-sat",
        HUGE,
        "٣",
        "0x1",
    ]
)
cron_field = st.lists(cron_token, min_size=1, max_size=3).map("".join)
schedule_text = st.one_of(
    st.lists(cron_field, min_size=5, max_size=5).map(" ".join),
    st.lists(cron_field, min_size=1, max_size=7).map(" ".join),
    st.sampled_from(["@daily", "@reboot", "@Daily", "@dayly", "@daily 1", "@", " @hourly "]),
)
line_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12),
    st.sampled_from(
        [
            "batch",
            "Root",
            "root evil",
            "a" * 40,
            "-x",
            "Asia/Tokyo",
            "UTC",
            "Mars/Olympus",
            "../x",
            "/etc/x",
            "Asia",
            "EST5EDT",
            "a" * 300,
            "scripts",
            "/var/tmp",
            "..",
            "batch-*",
            "b[",
            "ssm:/a/b",
            "ssm:a",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
            "a b",
        ]
    ),
)
program = st.one_of(line_text, st.sampled_from(["scripts/x.sh", "/bin/x", "../x", "~/x"]))
argv = st.lists(program, min_size=1, max_size=3)
duration = st.one_of(
    st.sampled_from(["45m", "0", "1h30m", "45 minutes", f"{HUGE}s", "1w" * 50, "٣m", "0s"]),
    st.from_regex(r"\A[0-9]{1,12}[smhdw]\Z"),
)
env_name = st.one_of(st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,6}\Z"), st.sampled_from(["A", "DB"]))
secret_ref = st.one_of(
    line_text.map(toml_string),
    st.builds(
        lambda name, key: f"{{ secret = {toml_string(name)}, key = {toml_string(key)} }}",
        line_text,
        line_text,
    ),
    line_text.map(lambda name: f"{{ secret = {toml_string(name)} }}"),
)


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(map(toml_string, items)) + "]"


def toml_table(table: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{key} = {value}" for key, value in table.items()) + " }"


BY_KIND: dict[str, st.SearchStrategy[str]] = {
    schema.STRING: line_text.map(toml_string),
    schema.TEXT: st.text(min_size=1, max_size=20).map(toml_string),
    schema.BOOL: st.sampled_from(["true", "false"]),
    schema.DURATION: duration.map(toml_string),
    schema.ARGV: argv.map(toml_list),
    schema.STRING_LIST: st.lists(line_text, max_size=3).map(toml_list),
    schema.ENV_TABLE: st.dictionaries(
        env_name, st.text(max_size=8).map(toml_string), max_size=3
    ).map(toml_table),
    schema.SECRETS_TABLE: st.dictionaries(env_name, secret_ref, max_size=3).map(toml_table),
    schema.TABLE: st.fixed_dictionaries(
        {}, optional={"within": duration.map(toml_string), "check": argv.map(toml_list)}
    ).map(toml_table),
}
BY_NAME = {"schedule": schedule_text.map(toml_string)}


def typed_value(key: str) -> st.SearchStrategy[str]:
    """A value of the type the schema wants for ``key`` (any value for unknown keys)."""
    fields = {item.name: item for item in schema.JOB_FIELDS}
    if key in BY_NAME:
        return BY_NAME[key]
    if key not in fields:
        return toml_value
    item = fields[key]
    if item.kind == schema.ENUM:
        return st.sampled_from([*item.choices, "forbd"]).map(toml_string)
    return BY_KIND[item.kind]


@st.composite
def job_documents(draw: st.DrawFn) -> str:
    """Mostly well-formed TOML: each key at most once; values of the schema's type for
    most documents (so validation runs on them), of any type for the others."""
    keys = draw(st.lists(job_key, unique=True, max_size=10))
    sloppy = draw(st.integers(0, 3)) == 0
    lines = [f"{key} = {draw(toml_value if sloppy else typed_value(key))}" for key in keys]
    if draw(st.integers(0, 3)) > 0:  # fill in the required keys not drawn
        required = {
            "description": '"d"',
            "owner": '"o"',
            "schedule": '"30 3 * * *"',
            "user": '"batch"',
            "command": '["true"]',
        }
        lines += [f"{key} = {value}" for key, value in required.items() if key not in keys]
    return "\n".join(draw(st.permutations(lines))) + "\n"


@st.composite
def valid_leaning_jobs(draw: st.DrawFn) -> str:
    """A job file that often validates, with schedules, zones and targets drawn."""
    minute = draw(st.sampled_from(["0", "30", "*/15", "5,35", "*", "59", "0-10/5"]))
    hour = draw(st.sampled_from(["3", "*", "0", "23", "9-17", "*/6", "22,2"]))
    dom = draw(st.sampled_from(["*", "1", "15", "28-31", "1,15", "29", "31"]))
    month = draw(st.sampled_from(["*", "1", "2", "jan-jun", "*/3", "12"]))
    dow = draw(st.sampled_from(["*", "mon-fri", "0", "7", "sat,sun", "1"]))
    schedule = draw(
        st.one_of(
            st.just(f"{minute} {hour} {dom} {month} {dow}"),
            st.sampled_from(["@daily", "@hourly", "@weekly", "@monthly", "@yearly", "@reboot"]),
        )
    )
    zone = draw(
        st.sampled_from(
            [
                "UTC",
                "Asia/Tokyo",
                "America/New_York",
                "Asia/Kathmandu",
                "Australia/Lord_Howe",
                "Pacific/Chatham",
                "Europe/London",
            ]
        )
    )
    lines = [
        'description = "d"',
        'owner = "o"',
        f"schedule = {toml_string(schedule)}",
        f"timezone = {toml_string(zone)}",
        'user = "batch"',
        'command = ["scripts/x.sh"]',
    ]
    if draw(st.booleans()):
        lines.append(f'hosts = ["{draw(st.sampled_from(["batch-*", "other", "batch-1"]))}"]')
    if draw(st.booleans()):
        lines += ["enabled = false", 'reason = "retired"']
    return "\n".join(lines) + "\n"


def check_problems(problems: list[Problem], files: set[str]) -> None:
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.file in files
        assert problem.message.strip()
        assert problem.severity in (ERROR, WARNING)
        assert problem.line is None or problem.line >= 1
        assert problem.format()
        json.dumps(problem.as_dict())


def parse_and_validate(text: str, config: Optional[str] = None) -> list[Problem]:
    job, job_problems = parse_job(SourceFile(PATH, text), Defaults())
    assert (job is None) == bool(job_problems)
    config_file = None if config is None else SourceFile(REPO_CONFIG, config)
    repo, problems = parse_repo(config_file, [SourceFile(PATH, text)])
    problems += validate_repo(repo) + validate_repo(repo, HOST)
    check_problems(job_problems + problems, {PATH, REPO_CONFIG})
    return problems


@FUZZ
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    parse_and_validate(text)


@FUZZ
@given(schedule_text, st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York"]))
@example(f"{HUGE} * * * *", "UTC")
@example(f"*/{HUGE} * * * *", "UTC")
@example(f"0 0 * * 1-{HUGE}", "UTC")
def test_any_schedule_in_an_otherwise_valid_job_never_raises(schedule: str, zone: str) -> None:
    text = (
        f"description = 'd'\nowner = 'o'\nuser = 'batch'\ncommand = ['true']\n"
        f"timezone = '{zone}'\nschedule = {toml_string(schedule)}\n"
    )
    problems = parse_and_validate(text)
    event("valid schedule" if not problems else "schedule problem")
    if problems:
        assert all(p.field == "schedule" and p.line == 6 for p in problems)
    else:
        render_ok([text])


@FUZZ
@given(toml_ish)
def test_toml_ish_text_never_raises(text: str) -> None:
    parse_and_validate(text)


@SOME
@given(job_documents())
def test_well_formed_toml_with_any_values_never_raises(text: str) -> None:
    parse_and_validate(text)


@FEW
@given(toml_ish, st.one_of(toml_ish, job_documents().map(lambda t: "[defaults]\n" + t)))
def test_any_repo_config_never_raises(job_text: str, config: str) -> None:
    parse_and_validate(job_text, config)


@FEW
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["jobs/a.toml", "jobs/x/a.toml", "jobs/B.toml", "jobs/9.toml", "jobs/b.toml"]
            ),
            job_documents(),
        ),
        max_size=4,
    )
)
def test_many_files_never_raise(files: list[tuple[str, str]]) -> None:
    sources = [SourceFile(path, text) for path, text in files]
    repo, problems = parse_repo(None, sources)
    problems += validate_repo(repo, HOST)
    check_problems(problems, {path for path, _text in files})
    assert len({job.name for job in repo.jobs}) == len(repo.jobs)


def render_ok(texts: list[str]) -> str:
    """Parse, validate and render like a sync; the crontab when nothing blocks."""
    sources = [SourceFile(f"jobs/job-{i}.toml", text) for i, text in enumerate(texts)]
    repo, problems = parse_repo(None, sources)
    problems += validate_repo(repo, HOST)
    if any(problem.severity == ERROR for problem in problems):
        return ""
    entries, render_problems = plan_entries(repo, HOST, NOW)
    assert render_problems == []
    return render_crontab(
        entries, SourceInfo("https://x/jobs.git", "main", "c" * 40), "/usr/local/bin/cronsync-run"
    )


@FEW
@given(st.lists(st.one_of(valid_leaning_jobs(), job_documents()), min_size=1, max_size=3))
def test_what_validation_accepts_renders_into_a_valid_crontab(texts: list[str]) -> None:
    text = render_ok(texts)
    event("rendered" if text else "refused by validation")
    if not text:
        return
    assert text.endswith("\n") and not text.endswith("\n\n")
    for line in text.split("\n"):
        if not line or line.startswith("#") or "=" in line.split(" ")[0]:
            continue
        fields = line.split(" ")
        times = fields[0] if line.startswith("@") else " ".join(fields[:5])
        assert CronSlices.is_valid(times), line
        assert fields[-3:-1] == ["batch", "/usr/local/bin/cronsync-run"]
