"""A job repository as an EventBridge Scheduler CloudFormation template (pure).

One ``AWS::Scheduler::Schedule`` per job (two for an either-day-field schedule, see
``eventbridge``), in the job's zone, ``DISABLED`` for a disabled job. Its target is
SSM Run Command: ``AWS-RunShellScript`` runs ``cronsync run --force JOB`` on the
instances tagged ``cronsync-repo`` = the ``TargetTagValue`` parameter. Those hosts sync
the same repository with the agent (scripts, users, secrets, logs as usual) but are
not targeted by its jobs, so their cron does not run them too; ``--force`` runs a job
the host does not install. ``jitter`` is the flexible window (rounded up to minutes);
a failed invocation is retried, then sent to the template's dead-letter queue. The
schedules' role may only send that document to instances with that tag and write to
that queue.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from cronsync.core.model import Job, JobRepo
from cronsync.export.days import DAY_OF_WEEK
from cronsync.export.eventbridge import EventBridgeCron, eventbridge_crons
from cronsync.export.names import logical_id
from cronsync.export.refusal import Unexportable
from cronsync.export.result import ExportResult, each_job, job_zone

TARGET = "eventbridge"
TEMPLATE_FILE = "cronsync-schedules.json"
TAG_KEY = "cronsync-repo"
ROLE = "SchedulerRole"
QUEUE = "DeadLetterQueue"
SSM_LIMIT_SECONDS = 172_800  # AWS-RunShellScript's executionTimeout maximum
TIMEOUT_MARGIN_SECONDS = 300  # cronsync run stops the job itself; SSM waits a little longer
MAX_WINDOW_MINUTES = 1440
RETRY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}


def export_eventbridge(repo: JobRepo) -> ExportResult:
    """Translate every job of a validated repository into EventBridge schedules.

    Args:
        repo: a repository ``cronsync validate`` found no errors in.
    Returns:
        the template (``TEMPLATE_FILE``) and the summary; or, when a job cannot run
        exactly as in cron, only the problems.
    """
    done, problems = each_job(repo.jobs, TARGET, _translate)
    if problems:
        return ExportResult(TARGET, problems=tuple(problems))
    resources: dict[str, Any] = {QUEUE: _queue(), ROLE: _role()}
    jobs = []
    for job, (zone, crons) in done:
        ids = []
        for cron in crons:
            suffix = {"": "", DAY_OF_WEEK: "-weekdays"}.get(cron.part, "-month-days")
            resource_id = logical_id("Schedule", job.name + suffix, resources)
            resources[resource_id] = _schedule(job, zone, cron)
            ids.append(resource_id)
        jobs.append(_summary(job, zone, crons, ids))
    notes = tuple(
        f"{job.name}: jitter {job.jitter_seconds}s becomes a {_window(job)}-minute window"
        for job, _ in done
        if job.jitter_seconds % 60
    )
    return ExportResult(TARGET, {TEMPLATE_FILE: _template(resources)}, tuple(jobs), (), notes)


def _translate(job: Job) -> tuple[str, tuple[EventBridgeCron, ...]]:
    zone = job_zone(job)
    crons = eventbridge_crons(job.schedule)
    if _window(job) > MAX_WINDOW_MINUTES:
        raise Unexportable("EventBridge's flexible window is at most 1440 minutes", "jitter")
    if _execution_timeout(job) > SSM_LIMIT_SECONDS:
        raise Unexportable("SSM Run Command stops a command after 48 hours", "timeout")
    return zone, crons


def _window(job: Job) -> int:
    return -(-job.jitter_seconds // 60)


def _execution_timeout(job: Job) -> int:
    if job.timeout_seconds is None:
        return SSM_LIMIT_SECONDS
    return job.timeout_seconds + TIMEOUT_MARGIN_SECONDS


def run_command(job: Job, zone: str, cron: EventBridgeCron) -> str:
    """The shell line SSM runs for one schedule of a job.

    The day-of-week half of an either-day-field pair first reads the scheduled time
    (EventBridge's ``<aws.scheduler.scheduled-time>``, UTC) in the job's zone and ends
    quietly on a day of the month the other half runs on.
    """
    run = f"exec cronsync run --force {shlex.quote(job.name)}"
    if not cron.skip_days:
        return run
    days = " ".join(str(day) for day in cron.skip_days)
    return (
        f"day=$(TZ={shlex.quote(zone)} date -d '<aws.scheduler.scheduled-time>' +%-d)"
        f' && case " {days} " in *" $day "*) exit 0 ;; esac && {run}'
    )


def _schedule(job: Job, zone: str, cron: EventBridgeCron) -> dict[str, Any]:
    window = _window(job)
    flexible = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": window} if window else {"Mode": "OFF"}
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "Description": f"cronsync job {job.name} ({job.file}): {job.description}"[:512],
            "ScheduleExpression": cron.expression,
            "ScheduleExpressionTimezone": zone,
            "FlexibleTimeWindow": flexible,
            "State": "ENABLED" if job.enabled else "DISABLED",
            "Target": {
                "Arn": {"Fn::Sub": "arn:${AWS::Partition}:scheduler:::aws-sdk:ssm:sendCommand"},
                "RoleArn": {"Fn::GetAtt": [ROLE, "Arn"]},
                "Input": {"Fn::Sub": _input(job, zone, cron)},
                "RetryPolicy": dict(RETRY),
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [QUEUE, "Arn"]}},
            },
        },
    }


def _input(job: Job, zone: str, cron: EventBridgeCron) -> str:
    """SendCommand's parameters as JSON, for ``Fn::Sub`` (``${TargetTagValue}``)."""
    command = run_command(job, zone, cron)
    if "${" in command:  # cannot happen: job names and zones hold no '$'
        raise Unexportable("the command would be read as a CloudFormation substitution")
    parameters = {
        "DocumentName": "AWS-RunShellScript",
        "Targets": [{"Key": f"tag:{TAG_KEY}", "Values": ["${TargetTagValue}"]}],
        "Parameters": {
            "commands": [command],
            "executionTimeout": [str(_execution_timeout(job))],
        },
        "Comment": f"cronsync job {job.name}"[:100],
    }
    return json.dumps(parameters, sort_keys=True)


def _queue() -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::Queue",
        "Properties": {"MessageRetentionPeriod": 1_209_600, "SqsManagedSseEnabled": True},
    }


def _role() -> dict[str, Any]:
    sub = "Fn::Sub"
    statements = [
        {
            "Sid": "RunShellScriptOnly",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": {
                sub: "arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunShellScript"
            },
        },
        {
            "Sid": "OnTheRepositorysInstancesOnly",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": {
                sub: "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"
            },
            "Condition": {
                "StringEquals": {f"ssm:resourceTag/{TAG_KEY}": {"Ref": "TargetTagValue"}}
            },
        },
        {
            "Sid": "DeadLetters",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [QUEUE, "Arn"]},
        },
    ]
    trust = {
        "Effect": "Allow",
        "Principal": {"Service": "scheduler.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "EventBridge Scheduler runs cronsync jobs through SSM Run Command",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]},
            "Policies": [
                {
                    "PolicyName": "cronsync-run-jobs",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def _template(resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "cronsync export: the jobs repository's schedules on EventBridge "
        "Scheduler, run by SSM Run Command on the instances tagged for it",
        "Parameters": {
            "TargetTagValue": {
                "Type": "String",
                "Description": f"value of the {TAG_KEY} tag on the instances that run the jobs",
                "AllowedPattern": "[A-Za-z0-9 _.:/=+@-]{1,256}",
            }
        },
        "Resources": resources,
        "Outputs": {
            "DeadLetterQueueUrl": {"Value": {"Ref": QUEUE}},
            "SchedulerRoleArn": {"Value": {"Fn::GetAtt": [ROLE, "Arn"]}},
        },
    }


def _summary(
    job: Job, zone: str, crons: tuple[EventBridgeCron, ...], ids: list[str]
) -> dict[str, Any]:
    return {
        "job": job.name,
        "file": job.file,
        "schedules": [
            {"resource": rid, "expression": cron.expression, "skip_days": list(cron.skip_days)}
            for rid, cron in zip(ids, crons)
        ],
        "timezone": zone,
        "enabled": job.enabled,
    }
