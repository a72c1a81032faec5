"""The ``cronsync`` command as a real process: exit codes, one-line errors, outputs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.sandbox import TEMPLATE, Sandbox, agent_toml, copy_template

LOCK_HOLDER = """\
import sys
from pathlib import Path
from cronsync.files.lock import ExclusiveLock

with ExclusiveLock(Path(sys.argv[1]), "sync"):
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
"""


def assert_one_clean_line(done: subprocess.CompletedProcess[str]) -> str:
    """The process wrote exactly one line to stderr, no traceback; return that line."""
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# -- sync lock ---------------------------------------------------------------------


@contextlib.contextmanager
def sync_lock_held(sandbox: Sandbox) -> Iterator[subprocess.Popen[str]]:
    """Hold the sandbox's sync lock in another real process while the block runs."""
    lock = sandbox.state_dir / "sync.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
        assert holder.stdout is not None
        holder.stdout.close()
    assert holder.returncode == 0


def test_sync_exits_75_while_another_process_holds_the_lock(synced: Sandbox) -> None:
    with sync_lock_held(synced) as holder:
        done = synced.cli("sync")

        assert done.returncode == 75, done
        line = assert_one_clean_line(done)
        assert line.startswith("cronsync: another sync is running")
        assert str(holder.pid) in line
    assert synced.cli("sync").returncode == 0  # free again once the holder is gone


# -- agent config errors -----------------------------------------------------------


def test_missing_agent_config_exits_2(sandbox: Sandbox) -> None:
    missing = sandbox.base / "nowhere/agent.toml"

    done = sandbox.cli("sync", "--config", str(missing))

    assert done.returncode == 2, done
    line = assert_one_clean_line(done)
    assert str(missing) in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[repo\nurl = "x"\n', ":1: invalid TOML"),
        ('[repo]\nulr = "/srv/jobs.git"\n', ":2: repo.ulr: unknown key (did you mean 'url'?)"),
        ('[repo]\nurl = "/srv/jobs.git"\n[drift]\npolicy = "ignore"\n', ":4: drift.policy"),
    ],
    ids=["bad-toml", "unknown-key", "bad-enum"],
)
def test_invalid_agent_config_exits_2_naming_file_and_line(
    sandbox: Sandbox, text: str, expected: str
) -> None:
    sandbox.config_path.write_text(text)

    for verb in ("sync", "plan", "status"):
        done = sandbox.cli(verb)
        assert done.returncode == 2, done
        line = assert_one_clean_line(done)
        assert f"{sandbox.config_path}{expected}" in line, line
    assert not sandbox.state_dir.exists()  # nothing was attempted


def test_cron_file_outside_cron_d_is_refused_and_the_good_file_stays(synced: Sandbox) -> None:
    before = synced.cron_file.read_bytes()
    escaped = f"/etc/cron.d/../../../../escaped-{synced.base.name}"
    for cron_file in ("/etc/crond.d/cronsync", escaped):
        synced.write_config(f"[cron]\nfile = {json.dumps(cron_file)}\n")

        for verb in ("sync", "status"):
            done = synced.cli(verb)
            assert done.returncode == 2, done
            assert done.stdout == ""
            line = assert_one_clean_line(done)
            assert f"{synced.config_path}:17: cron.file: {cron_file!r} is not a file " in line
            assert "directly inside /etc/cron.d/" in line
        assert synced.cron_file.read_bytes() == before
    assert not (synced.root / "etc/crond.d").exists()
    assert not os.path.lexists(os.path.normpath(f"{synced.root}{escaped}"))


def test_relative_repo_url_is_a_config_error_not_a_git_failure(sandbox: Sandbox) -> None:
    relative = os.path.relpath(sandbox.upstream.bare, sandbox.config_path.parent)
    assert relative.startswith("..")  # what a user might write next to agent.toml
    sandbox.config_path.write_text(agent_toml(relative, sandbox.root))

    done = sandbox.cli("sync")

    assert done.returncode == 2, done
    assert assert_one_clean_line(done).endswith(
        f"{sandbox.config_path}:2: repo.url: a relative path; use an absolute path or a URL"
    )
    assert not sandbox.state_dir.exists()


def test_relative_paths_root_is_a_config_error(sandbox: Sandbox) -> None:
    text = agent_toml(str(sandbox.upstream.bare), sandbox.root)
    sandbox.config_path.write_text(text.replace(json.dumps(str(sandbox.root)), '"root"'))

    done = sandbox.cli("status")

    assert done.returncode == 2, done
    line = assert_one_clean_line(done)
    assert f"{sandbox.config_path}:15: paths.root: 'root' is a relative path" in line
    assert not (sandbox.config_path.parent / "root").exists()


def test_agent_config_with_a_byte_order_mark_names_it(sandbox: Sandbox) -> None:
    sandbox.config_path.write_bytes(b"\xef\xbb\xbf" + sandbox.config_path.read_bytes())

    done = sandbox.cli("sync")

    assert done.returncode == 2, done
    assert assert_one_clean_line(done) == (
        f"cronsync: invalid agent config: {sandbox.config_path}:1: starts with a UTF-8 "
        "byte-order mark; save the file without it"
    )


# -- --json when a command fails ----------------------------------------------------


def assert_error_json(done: subprocess.CompletedProcess[str], exit_code: int) -> dict[str, Any]:
    """The command exited ``exit_code`` with the error document on stdout, its
    ``error`` being the last line on stderr; return the document."""
    assert done.returncode == exit_code, done
    assert "Traceback" not in done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    assert doc["format"] == "cronsync.error/1"
    assert doc["exit_code"] == exit_code
    assert doc["error"] == done.stderr.strip().splitlines()[-1]
    return doc


def test_json_error_document_while_another_process_holds_the_lock(synced: Sandbox) -> None:
    with sync_lock_held(synced):
        for verb in ("sync", "plan"):
            doc = assert_error_json(synced.cli(verb, "--json"), 75)
            assert doc["error"].startswith("cronsync: another sync is running"), verb


@pytest.mark.parametrize("verb", ["sync", "plan", "status"])
def test_json_error_document_for_a_broken_agent_config(sandbox: Sandbox, verb: str) -> None:
    sandbox.config_path.write_text('[repo\nurl = "x"\n')

    doc = assert_error_json(sandbox.cli(verb, "--json"), 2)

    assert doc["error"].startswith(f"cronsync: invalid agent config: {sandbox.config_path}:1: ")


def test_plan_json_of_a_repo_with_broken_jobs_lists_its_problems(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    repo = tmp_path / "jobs-repo"
    copy_template(repo)
    job = repo / "jobs/nightly-aggregate.toml"
    job.write_bytes(b"\xef\xbb\xbf" + job.read_bytes())

    doc = assert_error_json(sandbox.cli("plan", "--repo", str(repo), "--json"), 1)

    assert doc["error"] == "FAILED: a sync would refuse this commit; nothing would change"
    assert [(p["file"], p["line"], p["message"]) for p in doc["problems"]] == [
        (
            "jobs/nightly-aggregate.toml",
            1,
            "starts with a UTF-8 byte-order mark; save the file without it",
        )
    ]


def test_plan_json_of_an_unreachable_remote_exits_3(sandbox: Sandbox) -> None:
    sandbox.config_path.write_text(agent_toml(str(sandbox.base / "gone.git"), sandbox.root))

    doc = assert_error_json(sandbox.cli("plan", "--json"), 3)

    assert "repository not found" in doc["error"]


def test_bad_command_line_with_json_prints_an_error_document(sandbox: Sandbox) -> None:
    doc = assert_error_json(sandbox.cli("sync", "--json", "--bogus"), 2)

    assert doc["error"] == "cronsync: error: unrecognized arguments: --bogus"
    without = sandbox.cli("sync", "--bogus")
    assert without.returncode == 2
    assert without.stdout == ""


# -- options before or after the verb ------------------------------------------------


def test_config_and_verbose_are_taken_before_and_after_the_verb(sandbox: Sandbox) -> None:
    elsewhere = {"CRONSYNC_CONFIG": str(sandbox.base / "missing.toml")}
    config = str(sandbox.config_path)
    for args in (
        ("--config", config, "status", "--json"),
        ("status", "--json", "--config", config),
        ("status", "-v", "--json", "--config", config),
        ("-v", "--config", config, "status", "--verbose", "--json"),
    ):
        done = sandbox.cli(*args, env=elsewhere)

        assert done.returncode == 2, (args, done)  # health failed: nothing synced yet
        assert json.loads(done.stdout)["host"] == "batch-1", args

    missing = assert_error_json(sandbox.cli("status", "-v", "--json", env=elsewhere), 2)
    assert "missing.toml" in missing["error"]


# -- validate ----------------------------------------------------------------------


def test_validate_template_is_clean(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "validate", str(TEMPLATE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done
    assert done.stdout.strip().splitlines()[-1].startswith("ok: 8 job files parsed, 0 errors")

    as_json = subprocess.run(
        [
            sys.executable,
            "-m",
            "cronsync.cli.main",
            "validate",
            "--json",
            "--no-lint",
            str(TEMPLATE),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert as_json.returncode == 0, as_json
    report = json.loads(as_json.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["jobs"] == 8


def broken_repo(dest: Path) -> list[str]:
    """A copy of the template with several broken files; return every problem's
    ``file:line: field`` prefix that validate must report."""
    copy_template(dest)
    jobs, scripts = dest / "jobs", dest / "scripts"
    (jobs / "a-report.toml").write_text(
        'description = "a"\n'
        'owner = "a@example.com"\n'
        'schedule = "0 25 * * *"\n'
        'timezone = "Europe/Atlantis"\n'
        'command = ["scripts/missing.sh"]\n'
    )
    (jobs / "b-report.toml").write_text(
        'description = "b"\nowner = "b@example.com"\nschedule = "0 1 * * *"\n'
        'command = ["scripts/b.sh"]\n'
    )
    (scripts / "b.sh").write_text("#!/bin/sh\necho b\n")
    (scripts / "b.sh").chmod(0o644)
    (jobs / "c-report.toml").write_text('description = "c"\nowner = \n')
    (jobs / "d-report.toml").write_text(
        'description = "d"\nowner = "d@example.com"\nschedule = "0 1 * * *"\n'
        'timeout = "3 parsecs"\ncomand = ["scripts/d.sh"]\n'
    )
    (jobs / "e-report.toml").write_text(
        'description = "e"\nowner = "e@example.com"\nschedule = "0 1 * * *"\n'
        'command = ["scripts/e.sh"]\n'
    )
    (scripts / "e.sh").write_text("echo e\n")
    (scripts / "e.sh").chmod(0o755)
    return [
        "jobs/a-report.toml:3: schedule: ",
        "jobs/a-report.toml:4: timezone: ",
        "jobs/a-report.toml:5: command: ",
        "jobs/b-report.toml:4: command: ",
        "jobs/c-report.toml:2: invalid TOML",
        "jobs/d-report.toml:4: timeout: ",
        "jobs/d-report.toml:5: comand: ",
        "scripts/e.sh:1: no shebang",
    ]


def test_validate_broken_repo_reports_every_problem_at_once(tmp_path: Path) -> None:
    repo = tmp_path / "jobs-repo"
    expected = broken_repo(repo)

    done = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "validate", "--no-lint", str(repo)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )

    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, done.stdout)
    assert len(lines) == len(expected), done.stdout
    assert done.stderr.startswith("FAILED: ")
    assert f"{len(expected)} errors" in done.stderr

    as_json = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "validate", "--json", "--no-lint", str(repo)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert as_json.returncode == 1, as_json
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == len(expected)
    assert {p["file"] for p in report["problems"]} == {
        "jobs/a-report.toml",
        "jobs/b-report.toml",
        "jobs/c-report.toml",
        "jobs/d-report.toml",
        "scripts/e.sh",
    }
    assert all(isinstance(p["line"], int) for p in report["problems"])


def test_validate_names_a_byte_order_mark_in_a_job_file(tmp_path: Path) -> None:
    repo = tmp_path / "jobs-repo"
    copy_template(repo)
    job = repo / "jobs/nightly-aggregate.toml"
    job.write_bytes(b"\xef\xbb\xbf" + job.read_bytes())

    done = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "validate", "--no-lint", str(repo)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )

    assert done.returncode == 1, done
    assert done.stdout.splitlines() == [
        "jobs/nightly-aggregate.toml:1: starts with a UTF-8 byte-order mark; save the file "
        "without it"
    ]


def test_validate_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-repo"

    done = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "validate", str(missing)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )

    assert done.returncode == 2, done  # "2 for usage errors" (validate --help)
    line = assert_one_clean_line(done)
    assert str(missing) in line


# -- plan --------------------------------------------------------------------------


def test_plan_before_first_sync_lists_every_job_as_added(sandbox: Sandbox) -> None:
    done = sandbox.cli("plan")

    assert done.returncode == 0, done
    for name in ("nightly-aggregate", "search-reindex", "us-sales-digest"):
        assert f"+ {name} (added)" in done.stdout
    # a retired job: in the release, never in this host's cron
    assert "  legacy-mail-report (not installed here: disabled: " in done.stdout
    assert "legacy-mail-report" not in done.stdout.split("\n\n", 1)[1]  # not in the cron diff
    assert f"+++ {sandbox.cron_file} (after sync)" in done.stdout
    assert f"+30 3 * * * batch {sandbox.shim} nightly-aggregate" in done.stdout
    assert not sandbox.cron_file.exists()  # plan changes nothing
    assert not os.path.lexists(sandbox.current)

    as_json = sandbox.cli("plan", "--json", "--exit-code")
    assert as_json.returncode == 2, as_json
    plan = json.loads(as_json.stdout)
    kinds = {c["name"]: c["kind"] for c in plan["changes"]}
    assert kinds["legacy-mail-report"] == "not installed here"
    assert set(kinds.values()) == {"added", "not installed here"}
    assert "legacy-mail-report" not in plan["next_runs"]
    assert plan["cron_diff"].startswith("--- ")


def test_plan_after_sync_and_after_a_pushed_change(sandbox: Sandbox) -> None:
    assert sandbox.cli("sync").returncode == 0
    cron_before = sandbox.cron_file.read_bytes()

    same = sandbox.cli("plan", "--exit-code")
    assert same.returncode == 0, same
    assert "No changes" in same.stdout

    path = sandbox.upstream.work / "jobs/nightly-aggregate.toml"
    path.write_text(path.read_text().replace('"30 3 * * *"', '"45 3 * * *"'))
    sandbox.upstream.commit_and_push("Later aggregate")

    changed = sandbox.cli("plan", "--exit-code")

    assert changed.returncode == 2, changed
    out = changed.stdout
    assert "~ nightly-aggregate (changed)" in out
    assert "schedule: '30 3 * * *' -> '45 3 * * *'" in out
    assert "    next: " in out and "T03:45:00" in out
    assert f"-30 3 * * * batch {sandbox.shim} nightly-aggregate" in out
    assert f"+45 3 * * * batch {sandbox.shim} nightly-aggregate" in out
    assert "sitemap-build" not in out.split("\n\n")[0]  # unchanged jobs are not listed
    assert sandbox.cron_file.read_bytes() == cron_before

    # a working tree, e.g. a branch not pushed yet
    path.write_text(path.read_text().replace('"45 3 * * *"', '"50 3 * * *"'))
    local = sandbox.cli("plan", "--repo", str(sandbox.upstream.work), "--exit-code")
    assert local.returncode == 2, local
    assert "schedule: '30 3 * * *' -> '50 3 * * *'" in local.stdout
    # the installed tree itself, as a working tree: nothing would change
    path.write_text(path.read_text().replace('"50 3 * * *"', '"30 3 * * *"'))
    sandbox.upstream.commit_and_push("Back to 03:30")
    assert sandbox.cli("sync").returncode == 0
    same_tree = sandbox.cli("plan", "--repo", str(sandbox.upstream.work), "--exit-code")
    assert same_tree.returncode == 0, same_tree
    assert "No changes" in same_tree.stdout

    assert sandbox.cli("sync").returncode == 0
    again = sandbox.cli("plan", "--exit-code")
    assert again.returncode == 0, again


def test_plan_of_a_broken_commit_exits_1(synced: Sandbox) -> None:
    synced.upstream.write("jobs/nightly-aggregate.toml", 'schedule = "* * *"\n')
    synced.upstream.commit_and_push("oops")

    done = synced.cli("plan")

    assert done.returncode == 1, done
    assert "jobs/nightly-aggregate.toml" in done.stderr
    assert "FAILED: a sync would refuse this commit" in done.stderr


# -- status ------------------------------------------------------------------------


def test_status_json_shape(sandbox: Sandbox) -> None:
    # synced by the CLI (real clock): the fixed clock of in-process syncs would make
    # jobs with success.within look stale since "2025"
    assert sandbox.cli("sync").returncode == 0
    synced = sandbox
    done = synced.cli("status", "--json")

    assert done.returncode == 0, done
    doc = json.loads(done.stdout)
    assert {
        "status_format",
        "host",
        "health",
        "installed",
        "last_sync",
        "drift",
        "agent",
        "stale_jobs",
        "jobs",
    } <= set(doc)
    assert doc["status_format"] == 1
    assert doc["host"] == "batch-1"
    assert doc["health"] == "ok"
    assert doc["installed"]["commit"] == synced.upstream.head()
    assert doc["last_sync"]["result"] == "installed"
    assert doc["drift"] == []
    names = [job["name"] for job in doc["jobs"]]
    assert names == sorted(names)
    assert "nightly-aggregate" in names
    for job in doc["jobs"]:
        assert {"name", "schedule", "timezone", "user", "next_run"} <= set(job)
        assert job["user"] == "batch"
    by_name = {job["name"]: job for job in doc["jobs"]}
    assert by_name["nightly-aggregate"]["schedule"] == "30 3 * * *"
    assert by_name["nightly-aggregate"]["next_run"].endswith("T03:30:00+00:00")
    assert by_name["partner-feed-tokyo"]["timezone"] == "Asia/Tokyo"
    assert by_name["legacy-mail-report"]["next_run"] is None  # disabled


def test_status_before_any_sync(sandbox: Sandbox) -> None:
    done = sandbox.cli("status", "--json")

    assert done.returncode == 2, done  # failed: nothing installed
    doc = json.loads(done.stdout)
    assert doc["health"] == "failed"
    assert doc["installed"] is None
    assert doc["last_sync"] is None
    assert doc["jobs"] == []


def test_sync_json_output(sandbox: Sandbox) -> None:
    done = sandbox.cli("sync", "--json")

    assert done.returncode == 0, done
    doc = json.loads(done.stdout)
    assert doc["record"]["result"] == "installed"
    assert doc["record"]["commit"] == sandbox.upstream.head()
    assert doc["drift"] == []


# -- what Debian cron reads ----------------------------------------------------------


def test_rendered_file_parses_as_a_system_crontab(synced: Sandbox) -> None:
    import crontab  # python-crontab, a test dependency: the outside judge must not skip

    tab = crontab.CronTab(tabfile=str(synced.cron_file), user=False)  # system: user field
    jobs = list(tab)
    installed = [name for name, job in synced.jobs_json()["jobs"].items() if job["installed"]]
    assert len(jobs) == len(installed)
    for job in jobs:
        assert job.is_valid(), job
        assert job.user == "batch"
        assert job.command.startswith(f"{synced.shim} ")
        assert job.command.split()[3] in installed
    assert dict(tab.env) == {"SHELL": "/bin/sh", "PATH": "/usr/bin:/bin", "MAILTO": ""}
    if os.geteuid() == 0 and shutil.which("cron", path="/usr/sbin"):
        info = synced.cron_file.stat()
        assert (info.st_uid, info.st_gid) == (0, 0)  # cron: "WRONG FILE OWNER" otherwise
        assert info.st_mode & 0o022 == 0  # cron: "INSECURE MODE" otherwise
