"""The fleet walkthrough: ./scripts/demo-fleet makes two sandbox hosts share one fleet
table in moto and shows, from its --json documents (never from its prose), the one-host
job running once for the occurrence while the other host records where it ran, both
hosts in ``cronsync fleet``, and the repository exported; the example output in
docs/how-to/run-more-than-one-host.md is what the script prints (its stable parts)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cronsync.export.kubernetes import KUBERNETES_VERSION
from helpers.demooutput import printed_lines, run_walkthrough, shown_lines

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "scripts/demo-fleet"
HOWTO = TOP / "docs/how-to/run-more-than-one-host.md"
DOC_SANDBOX = re.compile(r"/tmp/cronsync-fleet\.\w+")
HOSTS = ("batch-1", "batch-2")

# one worker runs the module, so the walkthrough runs once (a module fixture runs once
# per xdist worker)
pytestmark = pytest.mark.xdist_group("demo-fleet")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """Run the walkthrough once: (its sandbox, its output, the folder of --json documents)."""
    if not (TOP / ".venv/bin/cronsync").exists():
        pytest.skip("the walkthrough needs the test virtualenv .venv; ./scripts/test creates it")
    return run_walkthrough(SCRIPT, tmp_path_factory.mktemp("demo-fleet"))


def _doc(folder: Path, name: str) -> Any:
    return json.loads((folder / f"{name}.json").read_text())


def test_the_one_host_job_ran_once_and_the_other_host_names_the_winner(
    demo: tuple[Path, str, Path],
) -> None:
    _sandbox, _out, folder = demo
    runs = {host: _doc(folder, f"history-{host}") for host in HOSTS}
    assert all(len(records) == 1 for records in runs.values()), runs
    records = [records[0] for records in runs.values()]
    ran = [r for r in records if r["status"] == "succeeded"]
    skipped = [r for r in records if r["status"] == "skipped"]
    assert len(ran) == 1 and len(skipped) == 1, records
    (winner,), (other,) = ran, skipped
    assert winner["extra"]["fleet"]["token"] == 1
    assert winner["extra"]["fleet"]["holder"] == winner["host"]
    assert other["host"] != winner["host"]
    assert other["extra"]["fleet"]["holder"] == winner["host"]
    occurrence = winner["extra"]["fleet"]["occurrence"]
    assert other["extra"]["fleet"]["occurrence"] == occurrence
    assert other["reason"] == f"ran on {winner['host']}: occurrence {occurrence}"
    assert occurrence.endswith("T03:30:00+00:00")  # the schedule's, not the clock's minute
    # the every-host job ran on both, without a lease
    cleanup = [_doc(folder, f"cleanup-{host}") for host in HOSTS]
    assert [[r["status"] for r in records] for records in cleanup] == [["succeeded"]] * 2
    assert all("fleet" not in records[0]["extra"] for records in cleanup)


def test_cronsync_fleet_lists_both_hosts_healthy(demo: tuple[Path, str, Path]) -> None:
    _sandbox, _out, folder = demo
    fleet = _doc(folder, "fleet")
    assert fleet["healthy"] is True
    hosts = {host["host"]: host for host in fleet["hosts"]}
    assert sorted(hosts) == list(HOSTS)
    assert {host["state"] for host in hosts.values()} == {"ok"}
    assert all(host["one_host_jobs"] == ["fleet-report"] for host in hosts.values())
    (job,) = fleet["jobs"]
    assert job["job"] == "fleet-report" and sorted(job["healthy_hosts"]) == list(HOSTS)


def test_the_repository_is_exported_for_kubernetes_and_eventbridge(
    demo: tuple[Path, str, Path],
) -> None:
    sandbox, _out, _folder = demo
    names = sorted(p.stem for p in (sandbox / "jobs/jobs").glob("*.toml"))
    assert {"fleet-report", "fleet-cleanup"} <= set(names)
    kubernetes = sandbox / "export/kubernetes"
    assert sorted(p.stem for p in kubernetes.glob("*.json")) == names
    import kubernetes_validate  # type: ignore[import-untyped]  # the test extra has it

    for path in kubernetes.glob("*.json"):  # the judge of tests/integration/test_export.py
        manifest = json.loads(path.read_text())
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    cronjob = json.loads((kubernetes / "fleet-report.json").read_text())
    assert (cronjob["kind"], cronjob["spec"]["schedule"]) == ("CronJob", "30 3 * * *")
    template = json.loads((sandbox / "export/eventbridge/cronsync-schedules.json").read_text())
    expressions = [
        r["Properties"]["ScheduleExpression"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    assert len(expressions) == len(names) and "cron(30 3 * * ? *)" in expressions


def test_nothing_is_left_running(demo: tuple[Path, str, Path]) -> None:
    sandbox, _out, _folder = demo
    for host in HOSTS:  # the brokers and agents are gone, their sockets with them
        assert not (sandbox / host / "run/cronsync/broker.sock").exists()
    mine = subprocess.run(
        ["ps", "-eo", "args"], capture_output=True, text=True, timeout=30, check=True
    )
    assert str(sandbox) not in mine.stdout


def test_the_how_to_shows_what_the_script_prints(demo: tuple[Path, str, Path]) -> None:
    sandbox, out, _folder = demo
    printed = printed_lines(out, sandbox, TOP)
    shown = shown_lines(HOWTO, "scripts/demo-fleet", DOC_SANDBOX)
    assert [line for line, seen in shown if seen not in printed] == []
    assert len(shown) >= 20, "the how-to shows the walkthrough's output"
    assert any(seen.startswith("HOST STATE INSTALLED") for _line, seen in shown)


def test_the_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (./scripts/test installs it as root)")
    done = subprocess.run(
        [shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout
