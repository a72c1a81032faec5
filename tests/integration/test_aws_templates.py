"""The CloudFormation template in repo-template/aws/: cfn-lint's verdict, then our own rules.

cfn-lint is the outside judge (errors and warnings both fail); it runs in a subprocess of
this interpreter so its import-time warnings stay out of pytest's ``-W error``. The broken
copies prove the judge is really consulted. The structure tests read the YAML themselves
(short-form tags included) and check what a linter cannot know: least privilege, the
alarm semantics, and agreement with the agent's defaults.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

AWS_DIR = Path(__file__).resolve().parents[2] / "repo-template" / "aws"
TEMPLATE = AWS_DIR / "cronsync-host.yaml"
BATCH_HOST = AWS_DIR / "batch-host.yaml"  # the optional host from nothing (its own tests)
TEMPLATES = [TEMPLATE, BATCH_HOST]
REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]
NO_CFN_LINT = (
    "cfn-lint is not installed in this interpreter (pip install cfn-lint; it belongs in the "
    "test extras of pyproject.toml)"
)


# ---------------------------------------------------------------------------- cfn-lint


def _lint(path: Path) -> list[dict[str, Any]]:
    """Return cfn-lint's findings (errors and warnings, its default) for ``path``."""
    if importlib.util.find_spec("cfnlint") is None:
        pytest.fail(NO_CFN_LINT)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            "--format",
            "json",
            "--regions",
            *REGIONS,
            "--",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        findings = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"cfn-lint gave no JSON (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    # exit code: 0 clean; bit 2 errors, bit 4 warnings, bit 8 informational; 1 = crash
    assert done.returncode != 1, done.stderr
    assert bool(findings) == (done.returncode != 0), (done.returncode, findings)
    return findings


def _describe(findings: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{f['Level']} {f['Rule']['Id']} line {f['Location']['Start']['LineNumber']}: "
        f"{f['Message']}"
        for f in findings
    )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_cfn_lint_reports_nothing(path: Path) -> None:
    findings = _lint(path)
    assert findings == [], "cfn-lint:\n" + _describe(findings)


@pytest.mark.parametrize(
    ("old", "new", "level", "needle"),
    [
        # an error: an enum value CloudWatch does not know
        (
            "ComparisonOperator: LessThanThreshold\n",
            "ComparisonOperator: LessThanThresholdIsh\n",
            "Error",
            "LessThanThresholdIsh",
        ),
        # a warning: the log group retained on delete but not on replacement
        ("    UpdateReplacePolicy: Retain\n", "", "Warning", "UpdateReplacePolicy"),
        # an error in the metadata options: IMDSv2 is "required", nothing else
        ("HttpTokens: required\n", "HttpTokens: mandatory\n", "Error", "mandatory"),
    ],
    ids=["error", "warning", "metadata-options"],
)
def test_cfn_lint_catches_a_broken_copy(
    tmp_path: Path, old: str, new: str, level: str, needle: str
) -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the template changed: fix this test's edit {old!r}"
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    findings = _lint(broken)
    assert any(f["Level"] == level and needle in f["Message"] for f in findings), _describe(
        findings
    )


# ---------------------------------------------------------------------------- structure


def _load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """Parse a template, turning short-form tags (!Ref, !Sub, ...) into their long form."""
    import yaml  # PyYAML, a test dependency

    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", intrinsic)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load_template()


def _alarms(template: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str | None]]:
    """Every alarm: logical id -> (properties, the outermost Fn::ForEach identifier it
    sits under); alarms in a nested Fn::ForEach (one per host and job) are left out,
    see ``_job_alarms``."""
    found: dict[str, tuple[dict[str, Any], str | None]] = {}
    for name, body in template["Resources"].items():
        if name.startswith("Fn::ForEach::"):
            identifier, _collection, fragment = body
            for inner, resource in fragment.items():
                if inner.startswith("Fn::ForEach::"):
                    continue
                if resource["Type"] == "AWS::CloudWatch::Alarm":
                    found[inner] = (resource["Properties"], identifier)
        elif body["Type"] == "AWS::CloudWatch::Alarm":
            found[name] = (body["Properties"], None)
    return found


def _job_alarms(template: dict[str, Any]) -> list[tuple[dict[str, Any], str, str, Any]]:
    """Alarms of a nested Fn::ForEach: (resource, outer identifier, inner identifier,
    inner collection)."""
    found = []
    for name, body in template["Resources"].items():
        if not name.startswith("Fn::ForEach::"):
            continue
        outer, _collection, fragment = body
        for inner_name, inner_body in fragment.items():
            if inner_name.startswith("Fn::ForEach::"):
                inner, collection, resources = inner_body
                for resource in resources.values():
                    found.append((resource, outer, inner, collection))
    return found


def _by_metric(template: dict[str, Any], metric: str) -> tuple[dict[str, Any], str | None]:
    matches = [a for a in _alarms(template).values() if a[0]["MetricName"] == metric]
    assert len(matches) == 1, f"{len(matches)} alarms on {metric}"
    return matches[0]


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The role's inline statements; a conditional one (Fn::If) as when its condition holds."""
    role = template["Resources"]["HostRole"]["Properties"]
    statements = []
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                _condition, statement, otherwise = statement["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}
            statements.append(statement)
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_alarm_watches_one_host_and_notifies_the_topic(template: dict[str, Any]) -> None:
    alarms = _alarms(template)
    assert {props["MetricName"] for props, _ in alarms.values()} == {
        "SyncFailed",
        "Heartbeat",
        "JobFailed",
        "StaleJobs",
        "DriftDetected",
    }
    topic = {"Ref": "AlarmTopic"}
    for name, (props, identifier) in alarms.items():
        assert identifier is not None, f"{name}: not one per host"
        assert props.get("AlarmActions") == [topic], name
        assert props.get("OKActions") == [topic], name
        assert props["Namespace"] == {"Ref": "MetricsNamespace"}, name
        # the exact dimension set the agent and the shim's host-level copy publish
        assert props["Dimensions"] == [{"Name": "Host", "Value": {"Ref": identifier}}], name


def test_a_silent_agent_alarms(template: dict[str, Any]) -> None:
    props, _ = _by_metric(template, "Heartbeat")
    assert props["TreatMissingData"] == "breaching"  # a dead agent publishes nothing
    assert props["Statistic"] == "SampleCount"
    assert props["ComparisonOperator"] == "LessThanThreshold"
    assert props["Threshold"] == 1
    assert props["Period"] * props["EvaluationPeriods"] == 900


def test_failure_alarms_fire_on_one(template: dict[str, Any]) -> None:
    for metric, statistic in [
        ("SyncFailed", "Sum"),
        ("JobFailed", "Sum"),
        ("StaleJobs", "Maximum"),
        ("DriftDetected", "Maximum"),
    ]:
        props, _ = _by_metric(template, metric)
        assert props["Statistic"] == statistic, metric
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", metric
        assert props["Threshold"] == 1, metric
        assert props["TreatMissingData"] != "breaching", metric  # AgentSilent's job
    sync, _ = _by_metric(template, "SyncFailed")
    assert (sync["EvaluationPeriods"], sync["DatapointsToAlarm"]) == (2, 2)


def test_policy_is_least_privilege(template: dict[str, Any]) -> None:
    statements = _statements(template)
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    actions = {a for s in allowed for a in _as_list(s["Action"])}
    assert actions == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:BatchGetSecretValue",
        "ssm:GetParameters",
        "ssm:GetParameter",
        "kms:Decrypt",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:GetLogEvents",
        "cloudwatch:PutMetricData",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    }
    for statement in allowed:
        assert "NotAction" not in statement and "NotResource" not in statement
        resources = _as_list(statement["Resource"])
        if "*" in resources:  # only actions IAM cannot scope to a resource
            assert set(_as_list(statement["Action"])) <= {
                "secretsmanager:BatchGetSecretValue",
                "cloudwatch:PutMetricData",
            }, statement
            assert resources == ["*"]

    def resources_of(action: str) -> list[str]:
        (statement,) = [s for s in allowed if action in _as_list(s["Action"])]
        return [r["Fn::Sub"] for r in _as_list(statement["Resource"])]

    assert resources_of("secretsmanager:GetSecretValue") == [
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
        ":secret:${SecretsPrefix}*"
    ]
    assert resources_of("ssm:GetParameter") == [
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
        ":parameter${ParameterPathPrefix}*"
    ]
    group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroupName}"
    assert resources_of("logs:PutLogEvents") == [group, group + ":*"]
    assert resources_of("logs:GetLogEvents") == [group, group + ":*"]

    (metrics,) = [s for s in allowed if "cloudwatch:PutMetricData" in _as_list(s["Action"])]
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": {"Ref": "MetricsNamespace"}}
    }
    (kms,) = [s for s in allowed if "kms:Decrypt" in _as_list(s["Action"])]
    assert kms["Resource"] == {"Ref": "SecretsKmsKeyArn"}
    assert set(kms["Condition"]["StringEquals"]) == {"kms:ViaService"}

    # the managed SSM policy allows GetParameter(s) on "*": our deny takes it back
    (deny,) = [s for s in statements if s["Effect"] == "Deny" and s["Action"] != "*"]
    assert set(_as_list(deny["Action"])) == {"ssm:GetParameter", "ssm:GetParameters"}
    assert deny["NotResource"][0] == {"Fn::Sub": resources_of("ssm:GetParameter")[0]}


def test_instances_require_imdsv2_with_hop_limit_1(template: dict[str, Any]) -> None:
    resources = list(template["Resources"].items())
    for name, body in resources[:]:
        if name.startswith("Fn::ForEach::"):  # [identifier, collection, fragment]
            resources += list(body[2].items())
    launch = [
        resource
        for name, resource in resources
        if not name.startswith("Fn::ForEach::")
        and resource["Type"] in ("AWS::EC2::LaunchTemplate", "AWS::EC2::Instance")
    ]
    assert launch, "no launch template or instance carries the metadata options"
    for resource in launch:
        data = resource["Properties"]
        if resource["Type"] == "AWS::EC2::LaunchTemplate":
            data = data["LaunchTemplateData"]
            assert data["IamInstanceProfile"] == {
                "Arn": {"Fn::GetAtt": ["HostInstanceProfile", "Arn"]}
            }
        options = data["MetadataOptions"]
        assert options["HttpTokens"] == "required"  # IMDSv2: a token first, no plain GET
        assert options["HttpPutResponseHopLimit"] == 1  # no token across a container bridge
        assert options.get("HttpEndpoint", "enabled") == "enabled"  # the role needs it
    assert template["Outputs"]["LaunchTemplateId"]["Value"] == {"Ref": "HostLaunchTemplate"}


def test_role_refuses_credentials_fetched_with_imdsv1(template: dict[str, Any]) -> None:
    # whatever an instance's own metadata options are (hosts not launched from the
    # template): credentials delivered by IMDSv1 are refused for every action
    (deny,) = [s for s in _statements(template) if s.get("Sid") == "NoIMDSv1Credentials"]
    assert (deny["Effect"], deny["Action"], deny["Resource"]) == ("Deny", "*", "*")
    assert deny["Condition"] == {"NumericLessThan": {"ec2:RoleDelivery": "2.0"}}


def test_role_is_for_ec2_and_ssm(template: dict[str, Any]) -> None:
    role = template["Resources"]["HostRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    ]
    profile = template["Resources"]["HostInstanceProfile"]
    assert profile["Properties"]["Roles"] == [{"Ref": "HostRole"}]


def test_conditional_parts(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert template["Parameters"]["SecretsKmsKeyArn"]["Default"] == ""
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Parameters"]["StaleAlarmJobs"]["Default"] == ""
    (policy,) = resources["HostRole"]["Properties"]["Policies"]
    conditions = [s["Fn::If"][0] for s in policy["PolicyDocument"]["Statement"] if "Fn::If" in s]
    assert sorted(conditions) == ["ConfineParameters", "HasFleet", "HasFleet", "HasKmsKey"]
    ((job_alarm, _host, _job, _jobs),) = _job_alarms(template)
    assert job_alarm["Condition"] == "HasStaleAlarmJobs"  # none while the list is empty


def test_log_group_has_retention(template: dict[str, Any]) -> None:
    group = template["Resources"]["JobLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}
    assert group["Properties"]["LogGroupName"] == {"Ref": "LogGroupName"}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_defaults_agree_with_the_agent(template: dict[str, Any]) -> None:
    from cronsync.core.model import RepoSettings

    params = template["Parameters"]
    defaults = RepoSettings()
    assert params["LogGroupName"]["Default"] == defaults.log_group
    assert params["MetricsNamespace"]["Default"] == defaults.metrics_namespace
    for name, value in [("SecretsPrefix", "batch-prod/"), ("ParameterPathPrefix", "/batch/prod/")]:
        assert re.fullmatch(params[name]["AllowedPattern"], params[name]["Default"]), name
        assert params[name]["Default"] == value
    # a prefix that would open every secret or parameter is refused
    assert not re.fullmatch(params["SecretsPrefix"]["AllowedPattern"], "")
    assert not re.fullmatch(params["SecretsPrefix"]["AllowedPattern"], "batch-prod")
    assert not re.fullmatch(params["ParameterPathPrefix"]["AllowedPattern"], "/")


@pytest.mark.parametrize(
    ("logical_id", "name", "command"),
    [
        ("StatusDocument", "${DocumentNamePrefix}-Status", "status --json"),
        ("FleetStatusDocument", "${DocumentNamePrefix}-FleetStatus", "fleet --json"),
        ("SyncNowDocument", "${DocumentNamePrefix}-SyncNow", "sync --now"),
    ],
)
def test_ssm_documents(template: dict[str, Any], logical_id: str, name: str, command: str) -> None:
    document = template["Resources"][logical_id]
    props = document["Properties"]
    assert document["Type"] == "AWS::SSM::Document"
    assert props["DocumentType"] == "Command"
    assert props["Name"] == {"Fn::Sub": name}
    assert template["Parameters"]["DocumentNamePrefix"]["Default"] == "Cronsync"
    content = props["Content"]
    assert content["schemaVersion"] == "2.2"
    (step,) = content["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    # exec: the script's exit code is cronsync's, so SSM reports it
    assert step["inputs"]["runCommand"] == [{"Fn::Sub": f"exec ${{CronsyncCommand}} {command}"}]


def test_outputs(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) == {
        "InstanceProfileName",
        "LaunchTemplateId",
        "RoleArn",
        "LogGroupName",
        "TopicArn",
        "StatusDocumentName",
        "SyncNowDocumentName",
        "FleetTableName",
    }


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_no_account_ids_or_hard_coded_partition(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", text)
    assert "arn:aws:" not in text
    readme = (TEMPLATE.parent / "README.md").read_text(encoding="utf-8")
    assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", readme)


# ------------------------------------------------------------- per-job alarm, dashboard


def test_each_listed_job_alarms_on_its_own_staleness(template: dict[str, Any]) -> None:
    ((resource, host, job, jobs),) = _job_alarms(template)
    assert jobs == {"Ref": "StaleAlarmJobs"}
    assert template["Parameters"]["StaleAlarmJobs"]["Type"] == "CommaDelimitedList"
    props = resource["Properties"]
    assert resource["Type"] == "AWS::CloudWatch::Alarm"
    assert (props["MetricName"], props["Statistic"], props["Threshold"]) == (
        "JobStale",
        "Maximum",
        1,
    )
    # the exact dimension set the agent publishes JobStale with
    assert props["Dimensions"] == [
        {"Name": "Host", "Value": {"Ref": host}},
        {"Name": "Job", "Value": {"Ref": job}},
    ]
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "ignore"
    assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "AlarmTopic"}]


def _published_metrics() -> dict[str, set[tuple[str, ...]]]:
    """What cronsync publishes, read from its code: metric name -> the dimension sets.

    Every data point is a ``Metric("Name", ...)``; the agent's go with [Host] (``job=``
    adds Job), the run metrics built by ``job_metrics`` go with [Host, Job] and, for the
    per-host alarms, [Host] (see ``broker/runmetrics``).
    """
    import ast

    package = Path(__file__).resolve().parents[2] / "agent" / "cronsync"
    found: dict[str, set[tuple[str, ...]]] = {}
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for call in ast.walk(function):
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id == "Metric"
                    and call.args
                    and isinstance(call.args[0], ast.Constant)
                ):
                    continue
                if function.name == "job_metrics":
                    dims = {("Host", "Job"), ("Host",)}
                elif any(k.arg == "job" for k in call.keywords):
                    dims = {("Host", "Job")}
                else:
                    dims = {("Host",)}
                found.setdefault(str(call.args[0].value), set()).update(dims)
    return found


def _dashboard(template: dict[str, Any]) -> dict[str, Any]:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    values = {
        "AWS::Region": "eu-west-1",
        "MetricsNamespace": "Cron sync",
        "LogGroupName": "/cronsync/jobs",
    }
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    assert names <= set(values), names - set(values)
    for name, value in values.items():
        body = body.replace("${" + name + "}", value)
    return json.loads(body)


def test_the_dashboard_shows_only_what_cronsync_publishes(template: dict[str, Any]) -> None:
    published = _published_metrics()
    # the code really is where the list comes from
    assert {"Heartbeat", "SyncFailed", "JobFailed", "JobDuration", "JobStale"} <= set(published)
    assert template["Resources"]["Dashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    widgets = _dashboard(template)["widgets"]
    shown: set[str] = set()
    search = re.compile(
        r"""SEARCH\('\{"Cron sync",([A-Za-z,]+)\} MetricName="(\w+)"', '\w+', 300\)"""
    )
    for widget in (w for w in widgets if w["type"] == "metric"):
        for row in widget["properties"]["metrics"]:
            (item,) = row
            match = search.fullmatch(item["expression"])
            assert match, item["expression"]
            dims, metric = tuple(match.group(1).split(",")), match.group(2)
            assert metric in published, f"{metric}: cronsync publishes no such metric"
            assert dims in published[metric], f"{metric} is not published with {dims}"
            shown.add(metric)
    # sync results, failures and durations per job, staleness, drift, heartbeat
    assert {
        "SyncSucceeded",
        "SyncFailed",
        "JobFailed",
        "JobDuration",
        "StaleJobs",
        "JobStale",
        "DriftDetected",
        "Heartbeat",
    } <= shown
    (logs,) = [w for w in widgets if w["type"] == "log"]
    query = logs["properties"]["query"]
    assert query.startswith("SOURCE '/cronsync/jobs' |")  # the job log group
    # streams are HOST/JOB/RUN-ID (cloud/logs): the query splits them so
    assert "parse @logStream '*/*/*' as host, job, run" in query
    for widget in widgets:
        assert widget["properties"]["region"] == "eu-west-1"
        assert widget["x"] + widget["width"] <= 24
