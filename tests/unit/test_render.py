"""Model -> crontab text and jobs.json: ``cronsync.core.render`` and ``cronsync.core.compiled``."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from crontab import CronSlices

from cronsync.core import fastjson
from cronsync.core.compiled import FORMAT, compile_jobs, dump_jobs
from cronsync.core.model import Defaults, HostContext, Job, JobRepo, SecretRef
from cronsync.core.render import (
    HEADER,
    CronEntry,
    SourceInfo,
    plan_entries,
    render_crontab,
)
from cronsync.core.schedule import matches, parse_schedule
from cronsync.core.tzrender import is_due, render_in_host_time

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)
HOST = HostContext("batch-eu-1", groups=("eu",), timezone="UTC")
SOURCE = SourceInfo(
    "https://git.example.com/batch/jobs.git", "main", "0123456789abcdef0123456789abcdef01234567"
)
SHIM = "/usr/local/bin/cronsync-run"


def make_job(name: str, **changes: Any) -> Job:
    job = Job(
        name=name,
        file=f"jobs/{name}.toml",
        description=f"the {name} job",
        owner="data-team@example.com",
        schedule="30 3 * * *",
        user="batch",
        command=(f"scripts/{name}.sh",),
    )
    return dataclasses.replace(job, **changes)


def build(
    jobs: list[Job], host: HostContext = HOST, shim: str = SHIM, now: datetime = NOW
) -> tuple[str, dict[str, Any]]:
    """Plan, render and compile like a sync does; no render problems allowed."""
    repo = JobRepo(Defaults(), tuple(jobs))
    entries, problems = plan_entries(repo, host, now)
    assert problems == []
    return render_crontab(entries, SOURCE, shim), compile_jobs(repo, host, SOURCE, entries, {})


def cron_lines(text: str) -> list[str]:
    """The schedule lines of a crontab (no comments, blanks or variable settings)."""
    return [
        line
        for line in text.split("\n")
        if line and not line.startswith("#") and not re.match(r"[A-Z]+=", line)
    ]


def split_line(line: str) -> tuple[str, str, str, str]:
    """A cron line -> (time spec, user, shim, job)."""
    if line.startswith("@"):
        times, rest = line.split(" ", 1)
    else:
        fields = line.split(" ")
        times, rest = " ".join(fields[:5]), " ".join(fields[5:])
    user, shim, job = rest.split(" ")
    return times, user, shim, job


MIXED = [
    make_job("nightly"),
    make_job("every-15", schedule="*/15 * * * *"),
    make_job("retired", enabled=False, reason="replaced by nightly-v2"),
    make_job("us-only", hosts=("batch-us-*",)),
    make_job("eu-group", groups=("eu",), user="etl", schedule="0 9 * * mon-fri"),
    make_job("on-boot", schedule="@reboot"),
]


# --- the file as a whole ------------------------------------------------------------


@pytest.mark.parametrize("jobs", [[], MIXED, [make_job("only")]])
def test_output_ends_with_exactly_one_newline(jobs: list[Job]) -> None:
    text, _doc = build(jobs)
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    assert "\r" not in text


def test_render_is_deterministic_and_ordered_by_name() -> None:
    text, doc = build(MIXED)
    again_text, again_doc = build(list(MIXED))
    reversed_text, reversed_doc = build(list(reversed(MIXED)))
    assert text == again_text == reversed_text
    assert dump_jobs(doc) == dump_jobs(again_doc) == dump_jobs(reversed_doc)
    names = [split_line(line)[3] for line in cron_lines(text)]
    assert names == sorted(names) == ["eu-group", "every-15", "nightly", "on-boot"]
    assert list(doc["jobs"]) == sorted(job.name for job in MIXED)


def test_header_names_url_branch_and_commit() -> None:
    text, _doc = build(MIXED)
    lines = text.split("\n")
    assert lines[0] == HEADER
    assert lines[0].startswith("# managed by cronsync")
    assert lines[1] == f"# source: {SOURCE.url} branch {SOURCE.branch} @ {SOURCE.commit}"
    assert lines[2:5] == ["SHELL=/bin/sh", "PATH=/usr/bin:/bin", 'MAILTO=""']


def test_environment_lines_are_the_only_variables() -> None:
    text, _doc = build(MIXED)
    variables = [line for line in text.split("\n") if re.match(r"[A-Za-z_]+=", line)]
    assert variables == ["SHELL=/bin/sh", "PATH=/usr/bin:/bin", 'MAILTO=""']


def test_one_line_per_enabled_targeted_job_calling_the_shim_as_the_user() -> None:
    text, _doc = build(MIXED)
    assert cron_lines(text) == [
        f"0 9 * * mon-fri etl {SHIM} eu-group",
        f"*/15 * * * * batch {SHIM} every-15",  # same zone: the fields as written
        f"30 3 * * * batch {SHIM} nightly",
        f"@reboot batch {SHIM} on-boot",
    ]


def test_each_job_has_a_comment_with_its_schedule_and_zone() -> None:
    text, _doc = build(MIXED)
    assert "# nightly: 30 3 * * * (UTC)\n" in text
    assert "# on-boot: @reboot (UTC)\n" in text


def test_no_command_env_or_secret_of_a_job_reaches_the_crontab() -> None:
    job = make_job(
        "secretive",
        command=("scripts/leak.sh", "--password=hunter2"),
        env={"RAILS_ENV": "production-env-value"},
        secrets=(
            SecretRef("DB_PASSWORD", "secretsmanager", "batch-prod/db", "password"),
            SecretRef("TOKEN", "ssm", "/batch/prod/token"),
        ),
        workdir="scripts/work",
    )
    text, doc = build([job])
    for fragment in (
        "leak.sh",
        "hunter2",
        "RAILS_ENV",
        "production-env-value",
        "DB_PASSWORD",
        "batch-prod/db",
        "TOKEN",
        "/batch/prod/token",
        "scripts/work",
    ):
        assert fragment not in text
    assert cron_lines(text) == [f"30 3 * * * batch {SHIM} secretive"]
    # jobs.json holds the references (never a value) for the shim
    record = doc["jobs"]["secretive"]
    assert record["secrets"] == [
        {
            "env": "DB_PASSWORD",
            "store": "secretsmanager",
            "name": "batch-prod/db",
            "key": "password",
        },
        {"env": "TOKEN", "store": "ssm", "name": "/batch/prod/token", "key": None},
    ]
    assert record["env"] == {"RAILS_ENV": "production-env-value"}
    dumped = dump_jobs(doc).decode()
    assert "batch-prod/db" in dumped and "/batch/prod/token" in dumped


def test_the_model_cannot_hold_a_secret_value() -> None:
    # a reference is where to look, never what is there: if a value field is ever
    # added, the "no secret on disk" rule needs a new look
    assert [f.name for f in dataclasses.fields(SecretRef)] == ["env", "store", "name", "key"]
    secret_envs = {"DB_PASSWORD"}
    job = make_job(
        "s",
        env={"PLAIN": "1"},
        secrets=(SecretRef("DB_PASSWORD", "secretsmanager", "batch-prod/db"),),
    )
    _text, doc = build([job])
    record = doc["jobs"]["s"]
    assert secret_envs.isdisjoint(record["env"])
    # the only place the secret's variable appears is its reference
    dumped = json.dumps(record)
    assert dumped.count("DB_PASSWORD") == 1


# --- disabled and untargeted jobs ---------------------------------------------------


def test_disabled_and_untargeted_jobs_absent_from_crontab_but_in_jobs_json() -> None:
    text, doc = build(MIXED)
    assert "retired" not in text
    assert "us-only" not in text
    jobs = doc["jobs"]
    assert set(jobs) == {job.name for job in MIXED}
    assert jobs["retired"]["installed"] is False
    assert jobs["retired"]["status"] == "disabled: replaced by nightly-v2"
    assert jobs["retired"]["cron"] == []
    assert jobs["us-only"]["installed"] is False
    assert jobs["us-only"]["status"] == "not targeted at host batch-eu-1"
    assert jobs["us-only"]["cron"] == []
    for name in ("nightly", "every-15", "eu-group", "on-boot"):
        assert jobs[name]["installed"] is True
        assert jobs[name]["status"] == "installed"
    assert jobs["eu-group"]["cron"] == ["0 9 * * mon-fri"]
    assert jobs["on-boot"]["cron"] == ["@reboot"]


def test_jobs_json_document() -> None:
    job = make_job(
        "full",
        timezone="Asia/Tokyo",
        shell=None,
        workdir="scripts",
        timeout_seconds=2700,
        concurrency="replace",
        jitter_seconds=120,
        hosts=("batch-eu-*",),
        groups=("eu",),
        success=dataclasses.replace(
            make_job("x").success, within_seconds=93600, check=("scripts/check.sh",)
        ),
    )
    _text, doc = build([job])
    assert {k: v for k, v in doc.items() if k != "jobs"} == {
        "format": FORMAT,
        "repo": SOURCE.url,
        "branch": "main",
        "commit": SOURCE.commit,
        "host": "batch-eu-1",
        "host_timezone": "UTC",
        "settings": {"log_group": "/cronsync/jobs", "metrics_namespace": "Cronsync"},
    }
    assert doc["jobs"]["full"] == {
        "name": "full",
        "file": "jobs/full.toml",
        "description": "the full job",
        "owner": "data-team@example.com",
        "schedule": "30 3 * * *",
        "timezone": "Asia/Tokyo",
        "user": "batch",
        "command": ["scripts/full.sh"],
        "shell": None,
        "workdir": "scripts",
        "env": {},
        "secrets": [],
        "timeout": 2700,
        "concurrency": "replace",
        "jitter": 120,
        "success": {"within": 93600, "check": ["scripts/check.sh"]},
        "enabled": True,
        "reason": None,
        "hosts": ["batch-eu-*"],
        "groups": ["eu"],
        "run_on": "every-host",
        "fleet_unreachable": "skip",
        "installed": True,
        "status": "installed",
        "cron": ["30 18 * * *"],
        "gate": False,
        "stale_window": {"seconds": 93600, "source": "within"},
        "installed_since": None,  # compiled without a moment (a sync gives its own)
    }


def test_job_without_zone_is_compiled_in_the_host_zone() -> None:
    host = dataclasses.replace(HOST, timezone="Europe/Paris")
    _text, doc = build([make_job("local")], host=host)
    assert doc["jobs"]["local"]["timezone"] == "Europe/Paris"
    assert doc["jobs"]["local"]["cron"] == ["30 3 * * *"]
    assert doc["jobs"]["local"]["gate"] is False


def test_dump_jobs_is_sorted_compact_utf8_with_one_newline() -> None:
    # compact (no indent): json.dumps then takes CPython's C encoder, not the pure-Python
    # one indent needs (a tenth of a one-job sync at 10,000 jobs went to it)
    _text, doc = build([make_job("b", description="Zählt Bewertungen — täglich"), make_job("a")])
    data = dump_jobs(doc)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert "Zählt Bewertungen — täglich".encode() in data
    assert json.loads(data) == doc
    assert fastjson.loads(data.decode()) == doc  # what the shim reads it with
    again = json.dumps(json.loads(data), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert data == (again + "\n").encode()


# --- escaping and defence in depth ---------------------------------------------------


def test_percent_in_the_shim_path_is_escaped() -> None:
    text, _doc = build([make_job("p")], shim="/opt/cron%sync/bin/cronsync-run")
    (line,) = cron_lines(text)
    assert line == r"30 3 * * * batch /opt/cron\%sync/bin/cronsync-run p"
    assert re.search(r"(?<!\\)%", line) is None


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        ("user", "batch\n* * * * * root /bin/sh -c evil"),
        ("user", "batch\r"),
        ("job", "p\nx"),
        ("times", "* * * * *\n* * * * * root evil #"),
        ("schedule", "30 3 * * *\n* * * * * root evil"),
        ("zone", "UTC\x00"),
        ("user", "batch\t"),
        ("job", "p\x1b[2J"),
    ],
)
def test_control_character_reaching_render_crontab_raises(where: str, bad: str) -> None:
    entry = CronEntry("p", "batch", ("30 3 * * *",), True, "UTC", "30 3 * * *")
    if where == "times":
        entry = dataclasses.replace(entry, times=(bad,))
    else:
        entry = dataclasses.replace(entry, **{where: bad})
    with pytest.raises(ValueError, match="control character"):
        render_crontab((entry,), SOURCE, SHIM)


@pytest.mark.parametrize(
    ("source", "shim"),
    [
        (dataclasses.replace(SOURCE, url="https://x\n* * * * * root evil"), SHIM),
        (dataclasses.replace(SOURCE, branch="main\r\n"), SHIM),
        (dataclasses.replace(SOURCE, commit="abc\n"), SHIM),
        (SOURCE, "/usr/local/bin/cronsync-run\n* * * * * root evil"),
    ],
)
def test_control_character_in_source_or_shim_raises(source: SourceInfo, shim: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        render_crontab((), source, shim)


# --- time zones ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "schedule"),
    [
        ("Asia/Tokyo", "30 3 * * *"),  # exact: 18:30 UTC the day before
        ("Asia/Tokyo", "0 8 1 * *"),  # crosses a month boundary: covering + gate
        ("Asia/Tokyo", "0 9 * * mon-fri"),
        ("America/New_York", "30 3 * * *"),  # DST: two offsets, gate
        ("Asia/Kathmandu", "0 8 1 * *"),
        ("Australia/Lord_Howe", "0 9 * * mon-fri"),
        ("UTC", "0 8 1 * *"),
    ],
)
def test_zone_rendering_follows_render_in_host_time(zone: str, schedule: str) -> None:
    text, doc = build([make_job("tz", timezone=zone, schedule=schedule)])
    expected = render_in_host_time(parse_schedule(schedule), zone, "UTC", NOW)
    record = doc["jobs"]["tz"]
    assert record["cron"] == list(expected.lines)
    assert record["gate"] is (not expected.exact)
    assert record["timezone"] == zone
    assert [split_line(line)[0] for line in cron_lines(text)] == list(expected.lines)
    assert ("cronsync-run gates on the zone" in text) is (not expected.exact)


def test_tokyo_job_on_a_utc_host_exact() -> None:
    text, doc = build([make_job("tokyo", timezone="Asia/Tokyo")])
    assert cron_lines(text) == [f"30 18 * * * batch {SHIM} tokyo"]
    assert doc["jobs"]["tokyo"]["gate"] is False
    assert "# tokyo: 30 3 * * * (Asia/Tokyo)\n" in text


def test_tokyo_job_on_the_first_of_the_month_is_gated() -> None:
    _text, doc = build([make_job("tokyo", timezone="Asia/Tokyo", schedule="0 8 1 * *")])
    record = doc["jobs"]["tokyo"]
    assert record["gate"] is True
    # 08:00 on the 1st in Tokyo is 23:00 on the last day of the previous month in UTC
    assert record["cron"] == ["0 23 28-31 * *"]


@pytest.mark.parametrize(
    ("zone", "schedule", "start"),
    [
        ("Asia/Tokyo", "30 3 * * *", datetime(2025, 6, 28, tzinfo=timezone.utc)),
        ("Asia/Tokyo", "0 8 1 * *", datetime(2025, 2, 26, tzinfo=timezone.utc)),
        ("Asia/Tokyo", "0 9 * * mon-fri", datetime(2025, 6, 27, tzinfo=timezone.utc)),
        ("America/New_York", "30 1 * * *", datetime(2025, 3, 7, tzinfo=timezone.utc)),
        ("America/New_York", "30 1 * * *", datetime(2025, 10, 31, tzinfo=timezone.utc)),
        ("Asia/Kathmandu", "*/20 23 * * sun", datetime(2025, 6, 28, tzinfo=timezone.utc)),
        ("Australia/Lord_Howe", "15 2 1 * *", datetime(2025, 3, 30, tzinfo=timezone.utc)),
    ],
)
def test_host_lines_fire_whenever_the_job_is_due(zone: str, schedule: str, start: datetime) -> None:
    """Covering lines fire at every due minute; exact lines fire only then."""
    _text, doc = build([make_job("tz", timezone=zone, schedule=schedule)])
    record = doc["jobs"]["tz"]
    host_schedules = [parse_schedule(line) for line in record["cron"]]
    job_schedule, job_zone = parse_schedule(schedule), ZoneInfo(zone)
    due_count = 0
    for minute in range(5 * 24 * 60):
        when = start + timedelta(minutes=minute)
        fires = any(matches(item, when) for item in host_schedules)  # host is UTC
        due = is_due(job_schedule, when, job_zone)
        due_count += due
        assert fires or not due, f"due at {when} but no host line fires"
        if not record["gate"]:
            assert fires == due, f"exact lines fire at {when} but the job is not due"
    assert due_count > 0


# --- python-crontab agrees with every line ------------------------------------------

SCHEDULES = [
    "30 3 * * *",
    "*/15 * * * *",
    "0 9 * * mon-fri",
    "0 8 1 * *",
    "0 0 1 1 *",
    "5 4 1,15 jan-jun/2 *",
    "0 0 * * 7",
    "59 23 31 12 *",
    "0 */2 * * sat,sun",
    "@daily",
    "@hourly",
    "@weekly",
    "@monthly",
    "@yearly",
    "@reboot",
    "0 12 * * 5-7",
    "15 10 10-20 * 1",
]
ZONES = [
    "UTC",
    "Asia/Tokyo",
    "America/New_York",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Europe/London",
    "America/St_Johns",
]


@pytest.mark.parametrize("zone", ZONES)
def test_every_rendered_line_is_valid_for_python_crontab(zone: str) -> None:
    jobs = [make_job(f"job-{i}", schedule=s, timezone=zone) for i, s in enumerate(SCHEDULES)]
    text, _doc = build(jobs)
    lines = cron_lines(text)
    assert len(lines) >= len(SCHEDULES)
    for line in lines:
        times, user, shim, job = split_line(line)
        assert CronSlices.is_valid(times), line
        assert (user, shim) == ("batch", SHIM)
        assert job.startswith("job-")


def test_python_crontab_reads_the_whole_file_back() -> None:
    from crontab import CronTab

    jobs = [
        make_job(f"job-{i}", schedule=s, timezone="Asia/Tokyo") for i, s in enumerate(SCHEDULES)
    ]
    text, _doc = build(jobs, shim="/opt/cron%sync/run")
    tab = CronTab(tab=text, user=False)
    items = list(tab)
    assert len(items) == len(cron_lines(text))
    for item in items:
        assert item.is_valid()
        assert item.user == "batch"
        assert item.command.startswith("/opt/cron%sync/run job-")  # \% read back as %
    assert {var: tab.env[var] for var in tab.env} == {
        "SHELL": "/bin/sh",
        "PATH": "/usr/bin:/bin",
        "MAILTO": "",
    }


# --- plan_entries problems ------------------------------------------------------------


def test_unrenderable_job_is_a_problem_and_the_others_still_render() -> None:
    repo = JobRepo(
        Defaults(),
        (
            make_job("bad-zone", timezone="Nowhere/City"),
            make_job("bad-schedule", schedule="61 * * * *"),
            make_job("disabled-bad", schedule="61 * * * *", enabled=False, reason="x"),
            make_job("good"),
        ),
    )
    entries, problems = plan_entries(repo, HOST, NOW)
    assert [entry.job for entry in entries] == ["good"]
    assert sorted((p.file, p.field) for p in problems) == [
        ("jobs/bad-schedule.toml", "schedule"),
        ("jobs/bad-zone.toml", "schedule"),
    ]
    assert all(p.message for p in problems)


def test_plan_entries_describe_each_job() -> None:
    repo = JobRepo(Defaults(), (make_job("tokyo", timezone="Asia/Tokyo", user="etl"),))
    entries, _problems = plan_entries(repo, HOST, NOW)
    assert entries == (
        CronEntry("tokyo", "etl", ("30 18 * * *",), True, "Asia/Tokyo", "30 3 * * *"),
    )
