"""``cronsync export`` as a user runs it: the template repository to Kubernetes and
EventBridge, judged by outside tools (kubernetes-validate's schemas for
``KUBERNETES_VERSION``, cfn-lint), and the refusals that leave nothing behind."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cronsync.export.kubernetes import KUBERNETES_VERSION

TEMPLATE = Path(__file__).resolve().parents[2] / "repo-template"
CRONSYNC = [sys.executable, "-m", "cronsync.cli.main"]
IMAGE = "registry.example.com/batch/jobs:1.0"


def cronsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRONSYNC_CONFIG": str(cwd / "no-agent.toml")}
    return subprocess.run(
        [*CRONSYNC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "jobs-repo"
    shutil.copytree(TEMPLATE, copy, symlinks=True)
    return copy


def test_kubernetes_export_of_the_template_is_valid_for_the_stated_version(
    repo: Path, tmp_path: Path
) -> None:
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.fail(
            "kubernetes-validate is not installed (pip install kubernetes-validate; test extra)"
        )
    import kubernetes_validate  # type: ignore[import-untyped]

    out = tmp_path / "k8s"
    done = cronsync(
        "export", "--to", "kubernetes", "--image", IMAGE, "--out", str(out), str(repo), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in out.glob("*.json"))
    assert files == sorted(f"{p.stem}.json" for p in (repo / "jobs").glob("*.toml"))
    for path in out.glob("*.json"):
        manifest = json.loads(path.read_text())
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    legacy = json.loads((out / "legacy-mail-report.json").read_text())
    assert legacy["spec"]["suspend"] is True
    tokyo = json.loads((out / "partner-feed-tokyo.json").read_text())["spec"]
    assert (tokyo["schedule"], tokyo["timeZone"]) == ("0 8 1 * *", "Asia/Tokyo")
    container = tokyo["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][0] == "/opt/cronsync/repo/scripts/partner-feed.sh"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["DB_PASSWORD"] == {"name": "batch-prod-db-readonly", "key": "password"}
    assert (
        "secret batch-prod/db-readonly#password -> Secret batch-prod-db-readonly key password"
        in done.stdout
    )
    # a second export without a job removes its file and keeps files it did not write
    (repo / "jobs" / "weekly-cleanup.toml").unlink()
    (out / "mine.txt").write_text("not cronsync's\n")
    again = cronsync(
        "export", "--to", "kubernetes", "--image", IMAGE, "--out", str(out), str(repo), cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert not (out / "weekly-cleanup.json").exists()
    assert (out / "mine.txt").exists() and (out / "nightly-aggregate.json").exists()


def test_eventbridge_export_of_the_template_is_cfn_lint_clean(repo: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("cfnlint") is None:
        pytest.fail("cfn-lint is not installed in this interpreter (the test extra has it)")
    done = cronsync(
        "export",
        "--to",
        "eventbridge",
        "--json",
        "--out",
        str(tmp_path / "eb"),
        str(repo),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] and summary["target"] == "eventbridge"
    template_path = tmp_path / "eb" / "cronsync-schedules.json"
    template = json.loads(template_path.read_text())
    schedules = {
        k: v["Properties"]
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::Scheduler::Schedule"
    }
    assert schedules["ScheduleUsSalesDigest"]["ScheduleExpression"] == "cron(30 9 ? * MON-FRI *)"
    assert schedules["ScheduleUsSalesDigest"]["ScheduleExpressionTimezone"] == "America/New_York"
    assert schedules["ScheduleCdnWarmEu"]["FlexibleTimeWindow"] == {
        "Mode": "FLEXIBLE",
        "MaximumWindowInMinutes": 10,
    }
    assert schedules["ScheduleLegacyMailReport"]["State"] == "DISABLED"
    lint = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            "--format",
            "json",
            "--regions",
            "us-east-1",
            "eu-west-1",
            "--",
            str(template_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lint.returncode != 1, lint.stderr
    assert json.loads(lint.stdout) == [], lint.stdout


def _job(repo: Path, name: str, schedule: str) -> None:
    (repo / "jobs" / f"{name}.toml").write_text(
        f'description = "x"\nowner = "o@example.com"\nschedule = "{schedule}"\n'
        'command = ["scripts/cdn-warm.sh"]\n'
    )


@pytest.mark.parametrize("target", ["kubernetes", "eventbridge"])
def test_a_job_the_target_cannot_run_exactly_is_refused_and_nothing_is_written(
    repo: Path, tmp_path: Path, target: str
) -> None:
    _job(repo, "at-boot", "@reboot")
    _job(repo, "odd-mondays", "0 0 */2 * mon")
    out = tmp_path / "out"
    done = (
        cronsync(
            "export", "--to", target, "--image", IMAGE, "--out", str(out), str(repo), cwd=tmp_path
        )
        if target == "kubernetes"
        else cronsync("export", "--to", target, "--out", str(out), str(repo), cwd=tmp_path)
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"jobs/at-boot.toml:3: schedule: cannot export to {target}: @reboot" in done.stderr
    assert (
        f"jobs/odd-mondays.toml:3: schedule: cannot export to {target}: "
        "cron runs this schedule only on days matching BOTH" in done.stderr
    )
    assert not out.exists()


def test_a_repository_with_problems_is_refused_as_validate_reports_them(
    repo: Path, tmp_path: Path
) -> None:
    _job(repo, "broken", "61 * * * *")
    done = cronsync("export", "--to", "eventbridge", str(repo), cwd=tmp_path)
    assert done.returncode == 1
    assert (
        "jobs/broken.toml:3: schedule: '61 * * * *': minute: 61 is out of range 0-59" in done.stderr
    )
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--to", "kubernetes"], "cronsync: --to kubernetes needs --image IMAGE"),
        (
            ["--to", "eventbridge", "--image", IMAGE],
            "cronsync: --image is for --to kubernetes only",
        ),
    ],
)
def test_usage_mistakes_are_one_line(
    repo: Path, tmp_path: Path, args: list[str], line: str
) -> None:
    done = cronsync("export", *args, str(repo), cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(line), done.stderr
