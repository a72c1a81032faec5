"""repo-template/aws/batch-host.yaml: one batch host from nothing.

cfn-lint judges it in test_aws_templates.py. Here: the group of one and its instance's
metadata options, and the user data itself, taken out of the template as CloudFormation
would render it (``Fn::Sub`` with test values for the parameters): shellcheck and
``bash -n`` judge it, and its ``write_agent_toml`` runs in a sandbox (a PATH of a few
coreutils only, so nothing else it calls can reach this machine) and writes an
agent.toml the agent's own parser accepts.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_aws_templates import BATCH_HOST, TEMPLATE, _load_template

from cronsync.host.config import parse_config

CHECKOUT = Path(__file__).resolve().parents[2]
# What the user data's functions under test may run: nothing that installs or starts.
SANDBOX_TOOLS = ("mkdir", "chmod", "mktemp", "sync", "mv", "dirname")
VALUES = {
    "HostName": "batch-1",
    "InstanceProfileName": "cronsync-batch-prod-HostInstanceProfile-AbC123",
    "HostGroups": "eu,prod",
    "JobUsers": "batch,reports",
    "RepositoryUrl": "https://git.example.com/batch/jobs.git",
    "CronsyncSource": "https://git.example.com/mirror/cronsync.git",
    "AWS::Region": "eu-west-1",
    "AWS::URLSuffix": "amazonaws.com",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load_template(BATCH_HOST)


def _resources_of(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def _parameter_values(template: dict[str, Any], **overrides: str) -> dict[str, str]:
    """Every parameter's value for a rendering: VALUES, the defaults, ``overrides``."""
    values = {
        name: str(spec["Default"])
        for name, spec in template["Parameters"].items()
        if "Default" in spec
    }
    return {**values, **VALUES, **overrides}


def render_user_data(template: dict[str, Any], **overrides: str) -> str:
    """The user data script as CloudFormation renders it: ``${Name}`` is the parameter's
    (or pseudo parameter's) value, ``${!text}`` the literal ``${text}``. Each value must
    pass its parameter's AllowedPattern unless given in ``overrides``."""
    data = template["Resources"]["BatchHostLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    text = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    values = _parameter_values(template, **overrides)
    for name, spec in template["Parameters"].items():
        if "AllowedPattern" in spec and name not in overrides:
            assert re.fullmatch(spec["AllowedPattern"], values[name]), (name, values[name])

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        assert name in values, f"${{{name}}} in the user data is no parameter"
        return values[name]

    return re.sub(r"\$\{([^}]*)\}", value, text)


def _script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user-data.sh"
    path.write_text(text, encoding="utf-8")
    return path


def _sandboxed(tmp_path: Path, script: Path, call: str) -> subprocess.CompletedProcess[str]:
    """Source the user data (which defines its functions and runs nothing) and run
    ``call`` with a PATH of SANDBOX_TOOLS only."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in SANDBOX_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        link = bin_dir / tool
        if not link.exists():
            link.symlink_to(found)
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(
        [bash, "-c", f'source "$1" && {call}', "user-data", str(script)],
        env={"PATH": str(bin_dir), "LC_ALL": "C"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ---------------------------------------------------------------------------- the group


def test_one_instance_never_two(template: dict[str, Any]) -> None:
    (group,) = _resources_of(template, "AWS::AutoScaling::AutoScalingGroup")
    props = group["Properties"]
    assert (props["MinSize"], props["MaxSize"], props["DesiredCapacity"]) == ("1", "1", "1")
    assert props["LaunchTemplate"] == {
        "LaunchTemplateId": {"Ref": "BatchHostLaunchTemplate"},
        "Version": {"Fn::GetAtt": ["BatchHostLaunchTemplate", "LatestVersionNumber"]},
    }
    # a replacement (health, refresh) terminates before it launches: jobs never run twice
    assert props["InstanceMaintenancePolicy"] == {
        "MinHealthyPercentage": 0,
        "MaxHealthyPercentage": 100,
    }
    rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert (rolling["MinInstancesInService"], rolling["MaxBatchSize"]) == (0, 1)
    assert props["HealthCheckType"] == "EC2"
    assert {"Key": "Name", "Value": {"Ref": "HostName"}, "PropagateAtLaunch": True} in props["Tags"]


def test_the_instance_has_imdsv2_hop_limit_1_and_the_hosts_stacks_profile(
    template: dict[str, Any],
) -> None:
    (launch,) = _resources_of(template, "AWS::EC2::LaunchTemplate")
    data = launch["Properties"]["LaunchTemplateData"]
    options = data["MetadataOptions"]
    assert options["HttpTokens"] == "required"
    assert options["HttpPutResponseHopLimit"] == 1
    assert options["HttpEndpoint"] == "enabled"
    assert data["IamInstanceProfile"] == {"Name": {"Ref": "InstanceProfileName"}}
    # the profile is the other stack's: named by its output, not made again here
    assert "InstanceProfileName" in _load_template(TEMPLATE)["Outputs"]
    assert not _resources_of(template, "AWS::IAM::Role")
    assert not _resources_of(template, "AWS::IAM::InstanceProfile")
    assert not _resources_of(template, "AWS::Logs::LogGroup")
    (group,) = _resources_of(template, "AWS::EC2::SecurityGroup")
    assert "SecurityGroupIngress" not in group["Properties"]  # Session Manager, not ssh


def test_the_default_image_is_one_with_the_ssm_agent(template: dict[str, Any]) -> None:
    image = template["Parameters"]["ImageId"]
    assert image["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert image["Default"].startswith("/aws/service/canonical/ubuntu/server/")
    assert "/aws/service/debian/release/" in image["Description"]


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://git.example.com/batch/jobs.git", True),
        ("https://git.example.com:8443/batch/jobs", True),
        ("git@git.example.com:batch/jobs.git", True),
        ("ssh://git@git.example.com/batch/jobs.git", True),
        ("https://deploy:glpat-0123456789@git.example.com/batch/jobs.git", False),
        ("https://git.example.com/batch/jobs.git?access_token=0123456789", False),
        ("https://git.example.com/batch/jobs.git'; reboot; '", False),
        ("http://git.example.com/batch/jobs.git", False),
        ("file:///srv/jobs.git", False),
    ],
)
def test_the_repository_url_can_carry_no_credential(
    template: dict[str, Any], url: str, accepted: bool
) -> None:
    pattern = template["Parameters"]["RepositoryUrl"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, url)) is accepted


def test_the_cronsync_version_is_a_release_tag(template: dict[str, Any]) -> None:
    pattern = template["Parameters"]["CronsyncVersion"]["AllowedPattern"]
    assert re.fullmatch(pattern, template["Parameters"]["CronsyncVersion"]["Default"])
    for moving in ("main", "latest", "v1", "v1.2", "HEAD"):
        assert not re.fullmatch(pattern, moving), moving


# ---------------------------------------------------------------------------- user data


def test_the_user_data_is_shellcheck_clean(template: dict[str, Any], tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not found: install the Debian package 'shellcheck'")
    script = _script(tmp_path, render_user_data(template))
    done = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    syntax = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert syntax.returncode == 0, syntax.stderr


def test_the_user_data_writes_an_agent_toml_the_agent_accepts(
    template: dict[str, Any], tmp_path: Path
) -> None:
    script = _script(tmp_path, render_user_data(template))
    config = tmp_path / "etc" / "cronsync" / "agent.toml"

    done = _sandboxed(tmp_path, script, f"check_parameters && write_agent_toml {config}")

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # sourced: main did not run
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert [p.name for p in config.parent.iterdir()] == ["agent.toml"]  # no temp file left
    parsed = parse_config(config, config.read_text(encoding="utf-8"))
    assert parsed.repo_url == VALUES["RepositoryUrl"]
    assert parsed.branch == "main"
    assert parsed.host.name == "batch-1"
    assert list(parsed.host.groups) == ["eu", "prod"]
    assert sorted(parsed.host.allowed_users) == ["batch", "reports"]
    assert parsed.run.secrets_backend == "aws"
    assert parsed.run.logs_cloudwatch and parsed.run.metrics_cloudwatch
    assert parsed.drift_policy == "report"
    # a private *.toml reads as a secret store to the run's secret ledger (conftest):
    # this one holds none, and its URL is in the user data by design
    config.unlink()


def test_empty_groups_and_users_give_empty_lists(template: dict[str, Any], tmp_path: Path) -> None:
    script = _script(tmp_path, render_user_data(template, HostGroups="", JobUsers=""))
    config = tmp_path / "agent.toml"

    done = _sandboxed(tmp_path, script, f"check_parameters && write_agent_toml {config}")

    assert done.returncode == 0, done.stderr
    text = config.read_text(encoding="utf-8")
    assert "groups = []\n" in text and "allowed = []\n" in text
    parse_config(config, text)
    config.unlink()  # as above: not a secret store


@pytest.mark.parametrize(
    ("parameter", "value", "said"),
    [
        ("RepositoryUrl", "https://deploy:tok3n@git.example.com/jobs.git", "no credential"),
        ("RepositoryUrl", 'https://git.example.com/jobs.git" evil = "', "unexpected value"),
        ("RepositoryBranch", "main\nevil", "unexpected value"),
        ("HostName", "", "unexpected value"),
    ],
    ids=["credential", "quote", "newline", "empty"],
)
def test_the_user_data_checks_the_values_again(
    template: dict[str, Any], tmp_path: Path, parameter: str, value: str, said: str
) -> None:
    """Past a changed AllowedPattern, a value that would break out of a TOML string or
    carry a credential stops the boot script before anything is written."""
    text = render_user_data(template, **{parameter: value.replace("'", "")})
    script = _script(tmp_path, text)
    config = tmp_path / "agent.toml"

    done = _sandboxed(tmp_path, script, f"check_parameters && write_agent_toml {config}")

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert parameter in done.stderr and said in done.stderr, done.stderr
    assert not config.exists()


def test_the_user_data_installs_the_pinned_release_with_install_host(
    template: dict[str, Any],
) -> None:
    text = render_user_data(template, CronsyncVersion="v9.8.7")
    assert "cronsync_version='v9.8.7'" in text
    clone = re.search(r'git clone .*--branch "\$cronsync_version"', text)
    assert clone, "the release tag is what is cloned"
    (run,) = re.findall(r'"\$src/scripts/install-host"(.*)', text)
    options = re.findall(r"--[a-z-]+", run)
    usage = subprocess.run(
        [str(CHECKOUT / "scripts" / "install-host"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert options and all(option in usage for option in options), (options, usage)
    # agent.toml is written before install-host, which never replaces one
    assert text.index('write_agent_toml "$config"') < text.index("  install_cronsync\n")
    assert "systemctl enable --now cronsync-imds-guard.service cronsync-agent.service" in text


def test_the_user_data_holds_no_credential(template: dict[str, Any]) -> None:
    text = render_user_data(template)
    for needle in ("aws_secret_access_key", "AKIA", "password", "token="):
        assert needle not in text
    assert os.linesep == "\n" and "\r" not in text
