"""A sync end to end against real git: install, no-op, force-push, failures, recovery."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from typing import Callable

import pytest

from helpers.sandbox import Sandbox, git

TIME_FIELD = re.compile(r"^[0-9*/,\-A-Za-z]+$")
ENV_LINE = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def cron_job_lines(text: str) -> list[str]:
    """The lines of a cron file that are neither blank, comments nor variables."""
    return [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith("#") and not ENV_LINE.match(line)
    ]


def fingerprint(path: Path) -> tuple[int, int]:
    """(inode, mtime_ns) of a path, not following a final symlink."""
    info = os.lstat(path)
    return info.st_ino, info.st_mtime_ns


def test_push_sync_installs_cron_file_release_and_state(sandbox: Sandbox) -> None:
    head = sandbox.upstream.head()

    outcome = sandbox.sync()

    assert outcome.exit_code == 0
    assert outcome.record.result == "installed"
    assert outcome.record.commit == head
    cron = sandbox.cron_file
    info = cron.lstat()
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o644
    assert "." not in cron.name
    data = cron.read_bytes()
    assert data.endswith(b"\n")
    assert b"\r" not in data
    assert [p.name for p in cron.parent.iterdir()] == ["cronsync"]  # no temp file left

    jobs = sandbox.jobs_json()["jobs"]
    installed = {name for name, job in jobs.items() if job["installed"]}
    assert "legacy-mail-report" not in installed  # enabled = false
    assert {"search-reindex", "cdn-warm-eu"} <= installed  # host- and group-targeted
    named = set()
    for line in cron_job_lines(data.decode()):
        fields = line.split()
        assert len(fields) == 10, line
        assert all(TIME_FIELD.match(field) for field in fields[:5]), line
        assert fields[5] == "batch"
        assert " ".join(fields[6:9]) == sandbox.shim
        named.add(fields[9])
    assert named == installed

    target = os.readlink(sandbox.current)
    assert not os.path.isabs(target)
    assert re.fullmatch(r"releases/[0-9a-f]{12}-[0-9a-f]{8}", target)
    release = sandbox.state_dir / target
    assert (release / "repo").is_dir()
    assert (release / "jobs.json").is_file()
    assert (release / "repo/jobs/nightly-aggregate.toml").is_file()
    assert sandbox.jobs_json()["commit"] == head

    state = sandbox.state()
    assert state["installed"]["commit"] == head
    assert state["installed"]["release"] == os.path.basename(target)
    assert state["last_sync"]["result"] == "installed"
    assert state["last_sync"]["commit"] == head


def test_second_sync_without_changes_writes_nothing(synced: Sandbox) -> None:
    cron_before = fingerprint(synced.cron_file)
    release = synced.state_dir / os.readlink(synced.current)
    release_before = fingerprint(release)
    jobs_before = fingerprint(release / "jobs.json")
    link_before = fingerprint(synced.current)
    data_before = synced.cron_file.read_bytes()

    outcome = synced.sync()

    assert outcome.exit_code == 0
    assert outcome.record.result == "unchanged"
    assert outcome.drift == ()
    assert fingerprint(synced.cron_file) == cron_before
    assert synced.cron_file.read_bytes() == data_before
    assert fingerprint(release) == release_before
    assert fingerprint(release / "jobs.json") == jobs_before
    assert fingerprint(synced.current) == link_before
    assert synced.state()["last_sync"]["result"] == "unchanged"


def test_new_commit_is_installed_and_replaces_the_cron_line(synced: Sandbox) -> None:
    upstream = synced.upstream
    path = upstream.work / "jobs/nightly-aggregate.toml"
    path.write_text(path.read_text().replace('"30 3 * * *"', '"45 3 * * *"'))
    head = upstream.commit_and_push("Move the aggregate")

    outcome = synced.sync()

    assert outcome.record.result == "installed"
    assert not any("force-push" in note for note in outcome.record.notes)  # a fast-forward
    assert synced.state()["installed"]["commit"] == head
    text = synced.cron_file.read_text()
    assert f"45 3 * * * batch {synced.shim} nightly-aggregate\n" in text
    assert "30 3 * * * batch" not in text


def test_force_push_is_installed_and_noted(synced: Sandbox) -> None:
    upstream = synced.upstream
    first = upstream.head()
    path = upstream.work / "jobs/sitemap-build.toml"
    path.write_text(path.read_text().replace('"7 * * * *"', '"8 * * * *"'))
    upstream.commit_and_push("Sitemap at :08")
    assert synced.sync().record.result == "installed"
    replaced = upstream.head()

    git(upstream.work, "reset", "--quiet", "--hard", first)
    path.write_text(path.read_text().replace('"7 * * * *"', '"9 * * * *"'))
    rewritten = upstream.commit_and_push("Sitemap at :09 instead", force=True)

    outcome = synced.sync()

    assert outcome.record.result == "installed"
    assert outcome.record.commit == rewritten
    assert synced.state()["installed"]["commit"] == rewritten
    notes = " ".join(outcome.record.notes)
    assert "force-push" in notes
    assert replaced[:12] in notes
    assert f"9 * * * * batch {synced.shim} sitemap-build\n" in synced.cron_file.read_text()


def test_unreachable_remote_fails_and_keeps_last_known_good(synced: Sandbox) -> None:
    cron_before = synced.cron_file.read_bytes()
    link_before = os.readlink(synced.current)
    installed_before = synced.state()["installed"]
    moved = synced.base / "remote-moved-away.git"
    synced.upstream.bare.rename(moved)

    done = synced.cli("sync")

    assert done.returncode == 3, done
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("failed: cannot fetch branch 'main'")
    assert synced.cron_file.read_bytes() == cron_before
    assert os.readlink(synced.current) == link_before
    state = synced.state()
    assert state["last_sync"]["result"] == "failed"
    assert state["installed"] == installed_before

    outcome = synced.sync()  # the in-process outcome says the same
    assert outcome.record.result == "failed"
    assert outcome.exit_code == 3

    moved.rename(synced.upstream.bare)
    recovered = synced.sync()
    assert recovered.record.result == "unchanged"
    assert recovered.exit_code == 0
    assert synced.cron_file.read_bytes() == cron_before


def _garbage_head(checkout: Path) -> None:
    (checkout / ".git/HEAD").write_text("this is not a ref\n")


def _no_objects(checkout: Path) -> None:
    shutil.rmtree(checkout / ".git/objects")


@pytest.mark.parametrize("damage", [_garbage_head, _no_objects], ids=["garbage-HEAD", "no-objects"])
def test_corrupt_checkout_is_cloned_afresh(synced: Sandbox, damage: Callable[[Path], None]) -> None:
    cron_before = synced.cron_file.read_bytes()
    damage(synced.checkout)

    outcome = synced.sync()

    assert outcome.exit_code == 0
    assert outcome.record.result == "unchanged"
    assert any("cloned afresh" in note for note in outcome.record.notes)
    assert synced.cron_file.read_bytes() == cron_before
    assert (synced.checkout / ".git/HEAD").read_text().startswith("ref: ")

    path = synced.upstream.work / "jobs/sitemap-build.toml"
    path.write_text(path.read_text().replace('"7 * * * *"', '"8 * * * *"'))
    head = synced.upstream.commit_and_push("after the repair")
    assert synced.sync().record.result == "installed"
    assert synced.state()["installed"]["commit"] == head


def test_half_written_releases_are_ignored_and_old_ones_pruned(
    sandbox: Sandbox,
) -> None:
    sandbox.write_config("[sync]\nkeep_releases = 2\n")
    leftover = sandbox.releases / ".tmp-0123456789ab-4242"
    (leftover / "repo/jobs").mkdir(parents=True)
    (leftover / "repo/jobs/half.toml").write_text("descr")
    abandoned = sandbox.releases / "0123456789ab-deadbeef"
    (abandoned / "repo").mkdir(parents=True)  # a release without jobs.json

    first = sandbox.sync()

    assert first.record.result == "installed"
    assert not leftover.exists()
    assert (sandbox.current / "jobs.json").is_file()

    path = sandbox.upstream.work / "jobs/sitemap-build.toml"
    names = [os.path.basename(os.readlink(sandbox.current))]
    for minute in (11, 12, 13):
        path.write_text(re.sub(r'schedule = "\d+ ', f'schedule = "{minute} ', path.read_text()))
        sandbox.upstream.commit_and_push(f"sitemap at :{minute}")
        assert sandbox.sync().record.result == "installed"
        names.append(os.path.basename(os.readlink(sandbox.current)))

    assert len(set(names)) == 4
    remaining = {entry.name for entry in sandbox.releases.iterdir()}
    assert remaining == set(names[-3:])  # current + keep_releases newest old ones
    assert all((sandbox.releases / name / "jobs.json").is_file() for name in remaining)


def test_secret_values_never_reach_the_host_files(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "s3cr3t-value-only-in-the-environment"
    monkeypatch.setenv("DB_PASSWORD", value)
    monkeypatch.setenv("PARTNER_API_TOKEN", value + "-2")

    assert sandbox.sync().record.result == "installed"
    done = sandbox.cli("sync", "--force")
    assert done.returncode == 0, done

    job = sandbox.jobs_json()["jobs"]["nightly-aggregate"]
    reference = {"env": "DB_PASSWORD", "store": "secretsmanager", "name": "batch-prod/db"}
    assert job["secrets"] == [{**reference, "key": "password"}]
    assert "DB_PASSWORD" not in job["env"]
    needle = value.encode()
    for dirpath, _dirs, files in os.walk(sandbox.root):
        for name in files:
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            assert needle not in path.read_bytes(), path
    assert value not in done.stdout + done.stderr


def test_make_dir_leaves_a_right_directory_alone_and_fixes_a_wrong_one(tmp_path: Path) -> None:
    from cronsync.host.install import make_dir

    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.mkdir(mode=0o755)
    right.chmod(0o755)
    wrong.mkdir()
    wrong.chmod(0o700)
    before = right.stat().st_ctime_ns
    make_dir(right, 0o755)  # untouched: a user who may not chmod it may still use it
    make_dir(wrong, 0o755)
    make_dir(tmp_path / "new/deeper", 0o750)
    assert right.stat().st_ctime_ns == before
    assert stat.S_IMODE(wrong.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "new/deeper").stat().st_mode) == 0o750


def test_a_write_early_in_a_minute_is_touched_again_in_a_later_second(tmp_path: Path) -> None:
    from cronsync.host.install import make_cron_notice

    folder = tmp_path / "cron.d"
    folder.mkdir()
    top = 1_780_000_020  # the top of a minute
    slept: list[float] = []

    os.utime(folder, (top + 1.2, top + 1.2))  # written at second 1: cron may have looked
    assert make_cron_notice(folder, clock=lambda: top + 1.5, sleep=slept.append)
    assert slept == [pytest.approx(0.5)]  # into the next second, then touched (now)
    assert int(folder.stat().st_mtime) != top + 1

    os.utime(folder, (top + 30, top + 30))  # mid-minute: cron does not look then
    assert not make_cron_notice(folder, clock=lambda: top + 30.5, sleep=slept.append)
    assert int(folder.stat().st_mtime) == top + 30 and len(slept) == 1
