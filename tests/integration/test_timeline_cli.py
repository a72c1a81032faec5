"""``cronsync timeline`` and ``plan --timeline`` as real processes: a repository's and the
installed jobs, the SVG checked against the schedule code, recorded runs, colour only on a
terminal, and one clean line for each mistake."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronsync.core.schedule import parse_schedule
from cronsync.core.tzrender import next_runs
from cronsync.host.config import load_config
from cronsync.run.record import RunRecord
from cronsync.run.store import write_record
from helpers.sandbox import Sandbox, copy_template

SVG = "{http://www.w3.org/2000/svg}"
DRAWN = {  # the template's jobs drawn on batch-1 (group eu): schedule, zone
    "cdn-warm-eu": ("@hourly", "UTC"),
    "nightly-aggregate": ("30 3 * * *", "UTC"),
    "partner-feed-tokyo": ("0 8 1 * *", "Asia/Tokyo"),
    "search-reindex": ("*/10 * * * *", "UTC"),
    "sitemap-build": ("7 * * * *", "UTC"),
    "us-sales-digest": ("30 9 * * mon-fri", "America/New_York"),
    "weekly-cleanup": ("15 4 * * sun", "UTC"),
}


def expected(schedule: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The runs in [start, end) by the schedule code (``next_runs``)."""
    runs = next_runs(parse_schedule(schedule), start - timedelta(seconds=1), 5000, ZoneInfo(zone))
    return [r.astimezone(timezone.utc) for r in runs if r < end]


@pytest.fixture
def repo(sandbox: Sandbox) -> Path:
    """A working copy of the template with one job for another host."""
    work = sandbox.base / "work"
    copy_template(work)
    (work / "jobs/web-only.toml").write_text(
        'description = "web only"\nowner = "ops@example.com"\n'
        'schedule = "0 5 * * *"\ncommand = ["true"]\nhosts = ["web-9"]\n'
    )
    return work


def assert_one_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 or lines[0].startswith("usage:"), done.stderr
    return lines[-1]


def test_repo_svg_marks_are_the_next_runs_across_a_dst_change(sandbox: Sandbox, repo: Path) -> None:
    # 2026-03-08: New York springs forward; Sunday, then Monday
    svg = sandbox.base / "day.svg"
    done = sandbox.cli(
        "timeline", "--repo", str(repo), "--date", "2026-03-08", "--days", "2", "--svg", str(svg)
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {svg}" in done.stderr
    assert svg.stat().st_mode & 0o777 == 0o644
    root = ET.parse(svg).getroot()
    start = datetime(2026, 3, 8, tzinfo=timezone.utc)
    end = start + timedelta(days=2)
    lanes = {g.get("data-job"): g for g in root.iter(f"{SVG}g") if g.get("class") == "lane"}
    assert set(lanes) == set(DRAWN)
    for name, (schedule, zone) in DRAWN.items():
        marks = [m for m in lanes[name].iter(f"{SVG}rect") if m.get("data-start")]
        starts = [datetime.fromisoformat(str(m.get("data-start"))) for m in marks]
        assert starts == expected(schedule, zone, start, end), name
        assert zone in "".join(lanes[name].itertext())
    digest = lanes["us-sales-digest"]
    assert [m.get("data-job-time") for m in digest.iter(f"{SVG}rect") if m.get("data-start")] == [
        "2026-03-09T09:30:00-04:00"
    ]
    left = "".join(t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == "left-out")
    assert "legacy-mail-report" in left and "web-only" in left


def test_repo_json_and_the_text_view(sandbox: Sandbox, repo: Path) -> None:
    done = sandbox.cli("timeline", "--repo", str(repo), "--date", "2026-03-02", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jobs = {job["name"]: job for job in document["jobs"]}
    assert set(jobs) == set(DRAWN)
    assert jobs["search-reindex"]["count"] == 144
    assert [r["start"] for r in jobs["us-sales-digest"]["runs"]] == ["2026-03-02T14:30:00+00:00"]
    assert {item["job"] for item in document["left_out"]} == {"legacy-mail-report", "web-only"}
    text = sandbox.cli("timeline", "--repo", str(repo), "--date", "2026-03-02", "--width", "140")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert all(len(line) <= 140 for line in lines)
    assert "\x1b[" not in text.stdout  # not a terminal
    rows = [line.split()[0] for line in lines if line.split() and line.split()[0] in DRAWN]
    assert rows == sorted(DRAWN)
    assert "one column = 15 minutes" in lines[0]
    assert "2 jobs left out" in text.stdout


def run_on_terminal(sandbox: Sandbox, args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with its stdout on a pseudo-terminal; return what it wrote there."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "cronsync.cli.main", *args],
            stdout=follower,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CRONSYNC_CONFIG": str(sandbox.config_path), **env},
            cwd=sandbox.base,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO once the child has closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 0
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_unless_no_color(
    sandbox: Sandbox, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    args = ["timeline", "--repo", str(repo), "--date", "2026-03-02", "--width", "120"]
    assert "\x1b[" in run_on_terminal(sandbox, args, {})
    assert "\x1b[" not in run_on_terminal(sandbox, args, {"NO_COLOR": "1"})


def test_installed_jobs_and_their_recorded_runs(synced: Sandbox) -> None:
    done = synced.cli("timeline", "--date", "2026-03-02", "--json")
    assert done.returncode == 0, done.stderr
    assert {job["name"] for job in json.loads(done.stdout)["jobs"]} == set(DRAWN)
    runs_dir = load_config(str(synced.config_path)).paths.runs_dir
    (runs_dir / "nightly-aggregate").mkdir(parents=True, exist_ok=True)
    for number, (started, seconds, status) in enumerate(
        [
            ("2026-03-02T03:30:04.000Z", 2900.0, "succeeded"),
            ("2026-03-02T04:00:00.000Z", 60.0, "failed"),  # still within the first run
            ("2026-03-01T03:30:02.000Z", 10.0, "succeeded"),  # the day before
        ]
    ):
        record = RunRecord(f"r{number}", "nightly-aggregate", "batch-1", "batch", "c", "r", started)
        write_record(runs_dir, record.finished(status=status, ended=started, duration=seconds))
    history = synced.cli("timeline", "--date", "2026-03-02", "--from-history", "--json")
    assert history.returncode == 0, history.stderr
    document = json.loads(history.stdout)
    assert document["source"] == "history"
    jobs = {job["name"]: job for job in document["jobs"]}
    assert [(r["start"], r["seconds"], r["status"]) for r in jobs["nightly-aggregate"]["runs"]] == [
        ("2026-03-02T03:30:04+00:00", 2900.0, "succeeded"),
        ("2026-03-02T04:00:00+00:00", 60.0, "failed"),
    ]
    assert jobs["nightly-aggregate"]["overlaps"] == 1
    assert jobs["search-reindex"]["runs"] == []


def test_records_a_job_user_forged_do_not_break_the_history(synced: Sandbox) -> None:
    # the runs folder is the job user's: any number may be in a record
    runs_dir = load_config(str(synced.config_path)).paths.runs_dir
    (runs_dir / "nightly-aggregate").mkdir(parents=True, exist_ok=True)
    forged = [
        ("2026-03-02T03:30:00.000Z", float("inf")),
        ("2026-03-02T04:30:00.000Z", float("nan")),
        ("2026-03-02T05:30:00.000Z", 1e308),
        ("2026-03-02T06:30:00.000Z", -5.0),
        ("9999-12-31T23:59:00.000Z", 600.0),
        ("0001-01-01T00:00:00.000Z", 600.0),
    ]
    for number, (started, seconds) in enumerate(forged):
        record = RunRecord(f"f{number}", "nightly-aggregate", "batch-1", "batch", "c", "r", started)
        write_record(runs_dir, record.finished(status="failed", ended=started, duration=seconds))
    done = synced.cli("timeline", "--date", "2026-03-02", "--from-history", "--json")
    assert done.returncode == 0, done.stderr
    jobs = {job["name"]: job for job in json.loads(done.stdout)["jobs"]}
    assert [(r["start"][11:16], r["seconds"]) for r in jobs["nightly-aggregate"]["runs"]] == [
        ("03:30", None),
        ("04:30", None),
        ("05:30", None),
        ("06:30", None),
    ]
    text = synced.cli("timeline", "--date", "2026-03-02", "--from-history", "--width", "100")
    assert text.returncode == 0, text.stderr


def test_plan_timeline_draws_only_the_changed_jobs(synced: Sandbox) -> None:
    work = synced.upstream.work
    (work / "jobs/new-report.toml").write_text(
        'description = "new"\nowner = "ops@example.com"\n'
        'schedule = "45 6 * * *"\ncommand = ["true"]\n'
    )
    done = synced.cli("plan", "--repo", str(work), "--timeline", "--json")
    assert done.returncode == 0, done.stderr
    timeline = json.loads(done.stdout)["timeline"]
    assert [job["name"] for job in timeline["jobs"]] == ["new-report"]
    assert [r["start"][11:16] for r in timeline["jobs"][0]["runs"]] == ["06:45"]
    text = synced.cli("plan", "--repo", str(work), "--timeline", "--width", "100")
    assert text.returncode == 0, text.stderr
    assert any(line.startswith("new-report") for line in text.stdout.splitlines())


MISTAKES = [
    (["--repo", "nowhere"], 2, "is not a directory"),
    (["--repo", "."], 2, "has no jobs/ directory"),
    (["--date", "2026-13-01"], 2, "--date"),
    (["--days", "8"], 2, "--days"),
    (["--width", "10"], 2, "--width"),
    (["--from-history", "--repo", "."], 2, "--from-history"),
    ([], 1, "nothing is installed"),
]


def test_mistakes_get_one_line(sandbox: Sandbox) -> None:
    for args, code, says in MISTAKES:
        done = sandbox.cli("timeline", *args)
        assert says in assert_one_line(done, code), args
        json_done = sandbox.cli("timeline", *args, "--json")
        assert json.loads(json_done.stdout)["exit_code"] == code


def test_a_date_the_calendar_cannot_draw_is_a_usage_error(sandbox: Sandbox, repo: Path) -> None:
    # the window and the schedule's search reach past year 1 and 9999 of datetime
    for day in ("0001-01-01", "9998-06-01", "9999-12-31"):
        done = sandbox.cli("timeline", "--repo", str(repo), "--date", day, "--days", "7")
        assert "--date" in assert_one_line(done, 2), day


def test_an_svg_target_that_is_a_folder_is_a_usage_error(sandbox: Sandbox, repo: Path) -> None:
    done = sandbox.cli("timeline", "--repo", str(repo), "--svg", str(sandbox.base))
    assert "is a folder" in assert_one_line(done, 2)


def test_a_machine_zone_python_does_not_know_is_one_line_about_the_machine(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import cronsync.host.hostinfo
    from cronsync.cli.main import main
    from cronsync.host.config import CONFIG_ENV, config_path

    monkeypatch.delenv(CONFIG_ENV, raising=False)
    if config_path(None).exists():
        pytest.skip("this machine has an agent config: the zone would come from it")
    # /etc/timezone says what its writer wrote (our seam: where the zone is read)
    monkeypatch.setattr(cronsync.host.hostinfo, "detect_host_timezone", lambda: "Nowhere/X")
    assert main(["timeline", "--repo", str(repo)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "'Nowhere/X'" in lines[0] and "/etc/timezone" in lines[0], lines


def test_a_repository_with_problems_is_refused_with_every_problem(
    sandbox: Sandbox, repo: Path
) -> None:
    (repo / "jobs/broken.toml").write_text(
        'description = "x"\nowner = "ops@example.com"\n'
        'schedule = "61 * * * *"\ncommand = ["true"]\n'
    )
    done = sandbox.cli("timeline", "--repo", str(repo), "--svg", str(sandbox.base / "x.svg"))
    assert done.returncode == 1
    assert "jobs/broken.toml" in done.stderr and "minute" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (sandbox.base / "x.svg").exists()


def test_the_documented_example_is_what_the_template_draws() -> None:
    from cronsync.core.model import HostContext
    from cronsync.core.timeline import day_window, scheduled_timeline
    from cronsync.core.timelinetext import render_text
    from cronsync.host.timelinesource import repo_jobs

    top = Path(__file__).resolve().parents[2]
    page = (top / "docs/how-to/see-when-jobs-run.md").read_text(encoding="utf-8")
    section = page[page.index("# See when jobs run: the timeline") :]
    example = section[section.index("```\n") + 4 : section.index("\n```", section.index("```\n"))]
    host = HostContext("batch-1", ("eu",), "UTC")
    found = repo_jobs(top / "repo-template", host, datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert found.errors == ()
    drawn = scheduled_timeline(found.jobs_doc["jobs"], day_window(date(2026, 3, 2), 1, "UTC"))
    text = render_text(drawn, width=100, colour=False)
    assert text.startswith(example)
