"""The export's pure translations: cron schedules to EventBridge and Kubernetes, names,
Secret mapping, the CronJob manifest and the CloudFormation template."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cronsync.core.model import Defaults, Job, JobRepo, SecretRef
from cronsync.export.cloudformation import TEMPLATE_FILE, export_eventbridge, run_command
from cronsync.export.eventbridge import EventBridgeCron, eventbridge_crons
from cronsync.export.kubernetes import REPO_DIR, export_kubernetes
from cronsync.export.kubeschedule import clock_change_notes, kubernetes_schedule
from cronsync.export.names import cronjob_name, secret_mapping, secret_target
from cronsync.export.refusal import Unexportable

JOB = Job(
    name="nightly-aggregate",
    file="jobs/nightly-aggregate.toml",
    description="Aggregate",
    owner="data@example.com",
    schedule="30 3 * * *",
    user="batch",
    timezone="Europe/Berlin",
    command=("scripts/aggregate.sh", "--date", "yesterday"),
    env={"RAILS_ENV": "production"},
    secrets=(SecretRef("DB_PASSWORD", "secretsmanager", "batch-prod/db", "password"),),
    timeout_seconds=2700,
    lines={"schedule": 4, "timezone": 5},
)


def _every_but(step: int, low: int, high: int) -> str:
    return ",".join(str(v) for v in range(low, high + 1) if v % step)


LONG_LISTS = f"{_every_but(5, 0, 59)} {_every_but(4, 0, 23)} {_every_but(4, 1, 31)} * *"


def _expressions(text: str) -> list[str]:
    return [cron.expression for cron in eventbridge_crons(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30 3 * * *", ["cron(30 3 * * ? *)"]),
        ("*/15 * * * *", ["cron(0/15 * * * ? *)"]),
        ("5-59/10 8-17 * * mon-fri", ["cron(5/10 8-17 ? * MON-FRI *)"]),
        ("0 0 * * 0,7", ["cron(0 0 ? * SUN *)"]),  # cron's 7 is Sunday too
        ("0 0 * * sat,sun", ["cron(0 0 ? * SUN,SAT *)"]),
        ("0 12 1,15 jan-mar *", ["cron(0 12 1,15 1-3 ? *)"]),
        ("10,20,45 2 * * *", ["cron(10,20,45 2 * * ? *)"]),
        ("0 0 1-31 * mon", ["cron(0 0 * * ? *)"]),  # both written: day-of-month covers all
        ("0 0 */2 * *", ["cron(0 0 1/2 * ? *)"]),
        ("@weekly", ["cron(0 0 ? * SUN *)"]),
    ],
)
def test_eventbridge_expressions(text: str, expected: list[str]) -> None:
    assert _expressions(text) == expected


def test_either_day_field_becomes_two_schedules_and_the_weekday_one_skips_the_dates() -> None:
    crons = eventbridge_crons("0 6 1,15 * mon")
    assert crons == (
        EventBridgeCron("cron(0 6 1,15 * ? *)", "day-of-month"),
        EventBridgeCron("cron(0 6 ? * MON *)", "day-of-week", (1, 15)),
    )
    guard = run_command(JOB, "Europe/Berlin", crons[1])
    assert guard.startswith("day=$(TZ=Europe/Berlin date -d '<aws.scheduler.scheduled-time>' +%-d)")
    assert 'case " 1 15 " in *" $day "*) exit 0 ;; esac' in guard
    assert guard.endswith("exec cronsync run --force nightly-aggregate")
    assert run_command(JOB, "UTC", crons[0]) == "exec cronsync run --force nightly-aggregate"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("@reboot", "@reboot runs when cron starts"),
        ("0 0 */2 * mon", "BOTH day-of-month '*/2' and day-of-week 'mon'"),
        ("0 0 * * */2", None),  # day-of-week alone: fine
        (LONG_LISTS, "EventBridge allows 256"),
    ],
)
def test_what_eventbridge_cannot_express_is_refused_with_the_reason(
    text: str, reason: str | None
) -> None:
    if reason is None:
        assert _expressions(text) == ["cron(0 0 ? * SUN,TUE,THU,SAT *)"]
        return
    with pytest.raises(Unexportable, match=reason.replace("(", r"\(").replace("*", r"\*")):
        eventbridge_crons(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30 3 * * *", "30 3 * * *"),
        ("0 0 */2 * *", "0 0 1-31/2 * *"),  # dom alone: robfig and cron agree either way
        ("0 0 * * */2", "0 0 * * 0,2,4,6"),  # '*/2' would be no star for robfig: AND kept
        ("0 6 1,15 * mon", "0 6 1,15 * 1"),  # both restricted: OR in both
        ("0 6 1-31/2 * 0,7", "0 6 1-31/2 * 0"),
        ("@daily", "0 0 * * *"),
    ],
)
def test_kubernetes_schedules(text: str, expected: str) -> None:
    assert kubernetes_schedule(text) == expected


def test_kubernetes_refuses_what_robfig_cannot_express() -> None:
    with pytest.raises(Unexportable, match="@reboot"):
        kubernetes_schedule("@reboot")
    with pytest.raises(Unexportable, match="BOTH"):
        kubernetes_schedule("0 0 */2 * mon")


def test_clock_change_notes() -> None:
    (repeated,) = clock_change_notes("30 1 * * *", "America/New_York", 2026)
    assert "repeats 01:30 on 2025-11-02" in repeated and "twice" not in repeated
    assert clock_change_notes("30 3 * * *", "America/New_York", 2026) == ()
    assert clock_change_notes("*/5 * * * *", "UTC", 2026) == ()
    assert clock_change_notes("0 12 * * *", "Asia/Tokyo", 2026) == ()
    (midnight,) = clock_change_notes("0 12 * * *", "America/Santiago", 2026)
    assert "at midnight or by other than an hour" in midnight


def test_cronjob_names_are_dns_labels_of_at_most_52() -> None:
    assert cronjob_name("nightly_aggregate") == "nightly-aggregate"
    long = "a" + "b_" * 31 + "c"
    name = cronjob_name(long)
    assert len(name) <= 52 and name[0].isalnum() and name[-1].isalnum()
    assert name != cronjob_name(long[:-1] + "d")


def test_secret_mapping_names_secrets_and_refuses_collisions() -> None:
    assert secret_target(SecretRef("X", "ssm", "/batch/prod/Token")) == (
        "ssm-batch-prod-token",
        "value",
    )
    assert secret_target(SecretRef("X", "secretsmanager", "batch-prod/db", "pass word")) == (
        "batch-prod-db",
        "pass_word",
    )
    with pytest.raises(Unexportable, match="would both be the Kubernetes Secret key"):
        secret_mapping(
            [SecretRef("A", "secretsmanager", "Db/x"), SecretRef("B", "secretsmanager", "db/x")]
        )


def _repo(*jobs: Job) -> JobRepo:
    return JobRepo(Defaults(), tuple(jobs))


def test_cronjob_manifest() -> None:
    disabled = replace(
        JOB, name="old", enabled=False, reason="retired", concurrency="replace", shell="echo hi"
    )
    result = export_kubernetes(_repo(JOB, disabled), "img:1", 2026)
    assert not result.problems
    manifest = result.documents["nightly-aggregate.json"]
    spec = manifest["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"], spec["suspend"]) == (
        "30 3 * * *",
        "Europe/Berlin",
        "Forbid",
        False,
    )
    job_spec = spec["jobTemplate"]["spec"]
    assert job_spec["activeDeadlineSeconds"] == 2700
    container = job_spec["template"]["spec"]["containers"][0]
    assert container["command"] == [f"{REPO_DIR}/scripts/aggregate.sh", "--date", "yesterday"]
    assert container["workingDir"] == REPO_DIR and container["image"] == "img:1"
    assert container["env"] == [
        {"name": "RAILS_ENV", "value": "production"},
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "batch-prod-db", "key": "password"}},
        },
    ]
    assert manifest["metadata"]["annotations"]["cronsync/owner"] == "data@example.com"
    old = result.documents["old.json"]
    assert old["spec"]["suspend"] is True and old["spec"]["concurrencyPolicy"] == "Replace"
    assert old["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "/bin/sh",
        "-c",
        "echo hi",
    ]
    assert result.secrets == (
        {
            "reference": "batch-prod/db#password",
            "secret": "batch-prod-db",
            "key": "password",
            "jobs": ["nightly-aggregate", "old"],
        },
    )


def test_kubernetes_refusals_are_problems_at_the_field() -> None:
    result = export_kubernetes(
        _repo(replace(JOB, schedule="@reboot"), replace(JOB, name="b", timezone=None)), "img", 2026
    )
    assert [p.format() for p in result.problems] == [
        "jobs/nightly-aggregate.toml:5: timezone: cannot export to kubernetes: no time zone: "
        "set timezone (or defaults.timezone in cronsync.toml); the target does not run in the "
        "host's zone",
        "jobs/nightly-aggregate.toml:4: schedule: cannot export to kubernetes: @reboot runs when "
        "cron starts; a Kubernetes CronJob has none",
    ]
    assert result.documents == {}
    clash = export_kubernetes(_repo(JOB, replace(JOB, name="nightly_aggregate")), "img", 2026)
    assert "would both be the CronJob name 'nightly-aggregate'" in clash.problems[0].message


def test_eventbridge_template() -> None:
    either = replace(JOB, name="twice", schedule="0 6 1 * mon", jitter_seconds=90, enabled=False)
    result = export_eventbridge(_repo(JOB, either))
    assert not result.problems
    resources = result.documents[TEMPLATE_FILE]["Resources"]
    assert sorted(resources) == [
        "DeadLetterQueue",
        "ScheduleNightlyAggregate",
        "ScheduleTwiceMonthDays",
        "ScheduleTwiceWeekdays",
        "SchedulerRole",
    ]
    weekdays = resources["ScheduleTwiceWeekdays"]["Properties"]
    assert weekdays["State"] == "DISABLED"
    assert weekdays["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 2}
    sent = json.loads(weekdays["Target"]["Input"]["Fn::Sub"])
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Targets"] == [{"Key": "tag:cronsync-repo", "Values": ["${TargetTagValue}"]}]
    assert sent["Parameters"]["executionTimeout"] == ["3000"]
    assert 'case " 1 " in' in sent["Parameters"]["commands"][0]
    nightly = resources["ScheduleNightlyAggregate"]["Properties"]
    assert nightly["FlexibleTimeWindow"] == {"Mode": "OFF"} and nightly["State"] == "ENABLED"
    statements = resources["SchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    assert {s["Action"] for s in statements} == {"ssm:SendCommand", "sqs:SendMessage"}
    assert result.notes == ("twice: jitter 90s becomes a 2-minute window",)
