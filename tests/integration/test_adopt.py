"""``cronsync adopt``: the whole cut-over on a fake host root with real git and a real sync.

Each test imports the host's crontabs (tests/data/crontabs) into a work repository,
fills in the placeholders, pushes, syncs in process and then runs ``adopt`` through
``add_import_verbs``: a dry run changes nothing, ``--apply`` comments out exactly the
lines the installed jobs replace (backups kept, owner and mode kept, restore commands
that work), and every refusal changes nothing at all.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from cronsync.migrate.adopt import ADOPTED, AdoptRefused
from helpers.crontabdata import DATA
from helpers.legacyhost import Host, origins_of, running_lines
from helpers.sandbox import copy_template


@pytest.fixture
def host(tmp_path: Path, git_env: None, capsys: pytest.CaptureFixture[str]) -> Host:
    """The host after `cronsync import` into the upstream, pushed and synced."""
    box = Host(tmp_path)
    box.import_jobs()
    box.push_and_sync()
    capsys.readouterr()
    return box


def test_dry_run_changes_nothing(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    before = host.snapshot()
    code, out = host.adopt(capsys)
    assert code == 0, out
    wanted = origins_of(host)
    total = sum(len(lines) for lines in wanted.values())
    assert f"would comment out {total} lines in 5 files:" in out
    assert "/etc/cron.d/backup:5 (mysqldump): 30 2 * * * root mysqldump -u backup -p*** " in out
    assert "dry run: nothing changed" in out
    assert host.snapshot() == before
    assert not (host.root / "var/lib/cronsync/adopt-backups").exists()


def test_apply_retires_every_replaced_line_and_can_be_undone(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    before = host.snapshot()
    code, out = host.adopt(capsys, "--apply")
    assert code == 0, out
    wanted = origins_of(host)
    assert wanted["/etc/cron.d/duplicates"] == {2, 3, 4, 6}
    for relative, (data, mode, _mtime) in before.items():
        path = host.root / relative
        lines, now = data.split(b"\n"), path.read_bytes().split(b"\n")
        retired = wanted.get("/" + relative, set())
        assert now == [
            ADOPTED + line if number in retired else line for number, line in enumerate(lines, 1)
        ]
        assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(mode)
        assert path.stat().st_uid == (host.root / "etc/passwd").stat().st_uid
        left = running_lines(path, not relative.startswith("var/"))
        assert not left & retired
    assert running_lines(host.root / "etc/cron.d/broken", True) == set()  # was never running
    restores = [line.split()[2:] for line in out.splitlines() if line.startswith("  cp -p ")]
    assert len(restores) == 5
    for backup, original in restores:
        relative = str(Path(original).relative_to(host.root))
        assert Path(backup).read_bytes() == before[relative][0]
        assert Path(backup).stat().st_mtime_ns == before[relative][2]
        assert "var/lib/cronsync/adopt-backups/" in backup
        assert stat.S_IMODE(Path(backup).parent.stat().st_mode) == 0o700
    again_code, again = host.adopt(capsys, "--apply")
    assert again_code == 0
    assert "commenting out 0 lines in 0 files" in again
    assert again.count("already adopted:") == sum(len(v) for v in wanted.values())
    for line in out.splitlines():
        if line.startswith("  cp -p "):
            subprocess.run(line.strip(), shell=True, check=True, timeout=120)
    assert {k: v[:2] for k, v in host.snapshot().items()} == {k: v[:2] for k, v in before.items()}


def test_a_changed_line_refuses_everything(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    backup = host.root / "etc/cron.d/backup"
    backup.write_text(backup.read_text().replace("--keep 28", "--keep 30"))
    before = host.snapshot()
    code, out = host.adopt(capsys, "--apply")
    assert code == 1
    assert "/etc/cron.d/backup:6 changed since the import (job rotate-backups)" in out
    assert "refused, nothing changed" in out
    assert host.snapshot() == before
    assert not (host.root / "var/lib/cronsync/adopt-backups").exists()


def test_lines_that_moved_are_found_by_their_digest(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    crontab = host.root / "etc/crontab"
    crontab.write_text("# a comment added after the import\n" + crontab.read_text())
    code, out = host.adopt(capsys, "--apply", str(crontab))
    assert code == 0, out
    lines = crontab.read_text().split("\n")
    assert lines[22].startswith("# cronsync-adopted: 17 *")  # was line 22, now 23
    assert "/etc/crontab:23 (cron-hourly)" in out
    assert host.snapshot()["etc/cron.d/backup"][0] == (DATA / "cron.d-backup").read_bytes()


def test_sources_limit_adopt_and_must_have_imported_jobs(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    before = host.snapshot()
    code, out = host.adopt(capsys, "--apply", str(host.root / "etc/cron.d/broken"))
    assert code == 1
    assert "has no job imported from /etc/cron.d/broken" in out
    assert host.snapshot() == before
    code, out = host.adopt(capsys, "--apply", str(host.root / "var/spool/cron/crontabs/batch"))
    assert code == 0, out
    spool = host.root / "var/spool/cron/crontabs/batch"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600
    assert spool.read_bytes() != before["var/spool/cron/crontabs/batch"][0]
    assert host.snapshot()["etc/crontab"] == before["etc/crontab"]


def test_a_disabled_job_keeps_its_original(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    job = host.upstream.work / "jobs/warm-cache.toml"
    text = job.read_text().replace(
        "\n[env]", 'enabled = false\nreason = "retired in review"\n\n[env]'
    )
    job.write_text(text)
    host.push_and_sync("retire warm-cache")
    code, out = host.adopt(capsys, "--apply")
    assert code == 0, out
    assert "job warm-cache: disabled: retired in review; its original line is left alone" in out
    crontab = (host.root / "etc/crontab").read_text().split("\n")
    assert crontab[28] == "@reboot root /usr/local/bin/warm-cache"
    assert crontab[21].startswith("# cronsync-adopted: ")


def test_refuses_when_the_cron_file_does_not_run_the_job(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    (host.root / "etc/cron.d/cronsync").unlink()
    before = host.snapshot()
    code, out = host.adopt(capsys, "--apply")
    assert code == 1
    assert "is installed in the release but not in" in out
    assert host.snapshot() == before


def test_refuses_when_the_installed_commit_has_no_imported_jobs(
    tmp_path: Path, git_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    box = Host(tmp_path)
    with pytest.raises(AdoptRefused, match="no installed release"):
        box.cli("adopt")
    copy_template(box.upstream.work)
    box.push_and_sync("the template only")
    before = box.snapshot()
    code, out = box.adopt(capsys, "--apply")
    assert code == 1
    assert "has no job made by `cronsync import`" in out
    assert box.snapshot() == before


def test_adopt_reads_the_installed_release_not_the_work_tree(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    (host.upstream.work / "jobs/aggregate.toml").unlink()  # not pushed, not synced
    code, out = host.adopt(capsys)
    assert code == 0 and "/etc/crontab:27 (aggregate)" in out
    current = host.root / "var/lib/cronsync/current"
    document = json.loads((current / "jobs.json").read_text())
    assert document["jobs"]["aggregate"]["installed"] is True
