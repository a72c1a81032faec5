"""``cronsync adopt``: the whole cut-over on a fake host root with real git and a real sync.

Each test imports the host's crontabs (tests/data/crontabs) into a work repository,
fills in the placeholders, pushes, syncs in process and then runs ``adopt`` through
``add_import_verbs``: a dry run changes nothing, ``--apply`` comments out exactly the
lines the installed jobs replace, secrets masked (root-only backups kept, owner and
mode kept, restore commands that work), ``--purge-backups`` removes the backups and
nothing else, and every refusal changes nothing at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cronsync.core.errors import InstallError
from cronsync.host.config import load_config
from cronsync.migrate.adopt import ADOPTED, AdoptRefused, apply_adopt, plan_adopt
from cronsync.migrate.adoptbackup import make_backup_folder, write_backup
from cronsync.migrate.jobwriter import parse_origins
from helpers import secretledger
from helpers.crontabdata import DATA, SECRETS
from helpers.legacyhost import FILES, Host, origins_of, running_lines
from helpers.sandbox import copy_template
from helpers.users import HAS_USERADD, IS_ROOT, temporary_users

BACKUPS = "var/lib/cronsync/adopt-backups"


@pytest.fixture
def host(tmp_path: Path, git_env: None, capsys: pytest.CaptureFixture[str]) -> Host:
    """The host after `cronsync import` into the upstream, pushed and synced."""
    box = Host.imported_and_synced(tmp_path)
    capsys.readouterr()
    return box


def test_dry_run_changes_nothing(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    before = host.snapshot()
    code, out = host.adopt(capsys)
    assert code == 0, out
    wanted = origins_of(host)
    total = sum(len(lines) for lines in wanted.values())
    settings = 4  # DB_PASSWORD, PGPASSWORD, API_TOKEN, AWS_SECRET_ACCESS_KEY: no job left
    assert f"would comment out {total + settings} lines in 5 files:" in out
    assert out.count("(secret setting no job uses now): ") == settings
    assert "/etc/cron.d/backup:5 (mysqldump): 30 2 * * * root mysqldump -u backup -p*** " in out
    assert "dry run: nothing changed" in out
    assert host.snapshot() == before
    assert not (host.root / "var/lib/cronsync/adopt-backups").exists()


def retired_by(host: Host) -> dict[str, dict[int, str]]:
    """Host path -> {line number: job} of every imported (enabled) job's origin."""
    found: dict[str, dict[int, str]] = {}
    for path in (host.upstream.work / "jobs").glob("*.toml"):
        text = path.read_text()
        if "enabled = false" not in text:
            for origin in parse_origins(text):
                found.setdefault(origin.source, {})[origin.line] = path.stem
    return found


def hide(line: bytes) -> bytes:
    """``line`` with every secret value of the corpus replaced by ``***``."""
    for secret in SECRETS:
        line = line.replace(secret.encode(), b"***")
    return line


def test_apply_retires_every_replaced_line_and_can_be_undone(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    before = host.snapshot()
    code, out = host.adopt(capsys, "--apply")
    assert code == 0, out
    wanted = retired_by(host)
    assert set(wanted["/etc/cron.d/duplicates"]) == {2, 3, 4, 6}
    for relative, (data, mode, _mtime) in before.items():
        path = host.root / relative
        lines, now = data.split(b"\n"), path.read_bytes().split(b"\n")
        retired = wanted.get("/" + relative, {})
        for number, (old, new) in enumerate(zip(lines, now, strict=True), 1):
            if number in retired:
                tag = f"{ADOPTED.decode()} (job {retired[number]}, line {number}): "
                assert new == tag.encode() + hide(old)
            elif not new.startswith(ADOPTED):
                assert new == old  # untouched (a secret setting no job uses now is masked)
        assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(mode)
        assert path.stat().st_uid == (host.root / "etc/passwd").stat().st_uid
        left = running_lines(path, not relative.startswith("var/"))
        assert not left & set(retired)
    assert running_lines(host.root / "etc/cron.d/broken", True) == set()  # was never running
    restores = [line.strip() for line in out.splitlines() if line.startswith("  install ")]
    assert len(restores) == 5
    backups = sorted(p for p in (host.root / BACKUPS).rglob("*") if p.is_file())
    assert len(backups) == 5
    for backup in backups:
        relative = "/".join(backup.relative_to(host.root / BACKUPS).parts[1:])  # STAMP/...
        assert backup.read_bytes() == before[relative][0]
        assert backup.stat().st_mtime_ns == before[relative][2]
    again_code, again = host.adopt(capsys, "--apply")
    assert again_code == 0
    assert "commenting out 0 lines in 0 files" in again
    assert again.count("already adopted:") == sum(len(v) for v in wanted.values())
    for line in restores:
        subprocess.run(line, shell=True, check=True, timeout=120)
    assert {k: v[:2] for k, v in host.snapshot().items()} == {k: v[:2] for k, v in before.items()}
    assert not list((host.root / "etc/cron.d").glob(".*"))  # no restore temp file left


def test_apply_leaves_no_secret_value_in_any_crontab(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = host.adopt(capsys, "--apply")
    assert code == 0, out
    for relative in FILES:
        data = (host.root / relative).read_bytes()
        if relative != "etc/cron.d/broken":  # nothing imported from it: left alone
            assert [s for s in SECRETS if s.encode() in data] == [], relative
    backup = (host.root / "etc/cron.d/backup").read_text().split("\n")
    assert backup[2] == "# cronsync-adopted (secret setting no job uses now): PGPASSWORD=***"
    assert backup[4] == (
        "# cronsync-adopted (job mysqldump, line 5): 30 2 * * * root mysqldump -u backup "
        "-p*** --single-transaction shop > /backup/shop.sql"
    )
    assert "/etc/cron.d/backup:3 (secret setting no job uses now): PGPASSWORD=***" in out
    crontab = (host.root / "etc/crontab").read_text().split("\n")
    assert crontab[11] == "# cronsync-adopted (secret setting no job uses now): DB_PASSWORD='***'"
    before = host.snapshot()
    code, again = host.adopt(capsys, "--apply")
    assert code == 0 and "commenting out 0 lines in 0 files" in again
    assert host.snapshot() == before


def test_lines_adopted_by_an_earlier_cronsync_get_their_secrets_masked(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    path = host.root / "etc/cron.d/backup"
    lines = path.read_bytes().split(b"\n")
    lines[4] = b"# cronsync-adopted: " + lines[4]  # how adopt left it before masking
    path.write_bytes(b"\n".join(lines))
    code, out = host.adopt(capsys, "--apply", str(path))
    assert code == 0, out
    assert "already adopted: /etc/cron.d/backup:5 (mysqldump)" in out
    assert "masking the secrets of 1 line adopted before:" in out
    now = path.read_text().split("\n")
    assert now[4] == (
        "# cronsync-adopted (job mysqldump, line 5): 30 2 * * * root mysqldump -u backup "
        "-p*** --single-transaction shop > /backup/shop.sql"
    )
    assert "myZx03pass" not in path.read_text()


def _tree_modes(folder: Path) -> set[tuple[str, int, int]]:
    found = set()
    for path in [folder, *folder.rglob("*")]:
        info = path.lstat()
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
        found.add((kind, stat.S_IMODE(info.st_mode), info.st_uid))
    return found


def test_backups_are_private_files_in_a_private_folder(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = host.adopt(capsys, "--apply")
    assert code == 0, out
    me = os.geteuid()
    assert _tree_modes(host.root / BACKUPS) == {("dir", 0o700, me), ("file", 0o600, me)}


def test_a_wider_backup_folder_is_tightened(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    base = host.root / BACKUPS
    base.mkdir(parents=True)
    base.chmod(0o755)
    code, out = host.adopt(capsys)
    assert code == 0, out
    assert f"note: the backup folder {base} is mode 0755: adopt makes it 0700 first" in out
    assert stat.S_IMODE(base.stat().st_mode) == 0o755  # a dry run changes nothing
    code, out = host.adopt(capsys, "--apply")
    assert code == 0, out
    assert stat.S_IMODE(base.stat().st_mode) == 0o700


def test_a_symlinked_backup_folder_is_refused(
    host: Host, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    base = host.root / BACKUPS
    base.parent.mkdir(parents=True, exist_ok=True)
    base.symlink_to(elsewhere)
    before = host.snapshot()
    code, out = host.adopt(capsys, "--apply")
    assert code == 1
    assert f"the backup folder {base} is a symlink: remove it" in out
    assert host.snapshot() == before
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(not (IS_ROOT and HAS_USERADD), reason="needs root and useradd")
def test_a_users_crontab_is_backed_up_for_root_only_and_restored_with_its_owner(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = host.root / "var/spool/cron/crontabs/batch"
    before = spool.read_bytes()
    with temporary_users(1) as (user,):
        os.chown(spool, user.pw_uid, user.pw_gid)
        code, out = host.adopt(capsys, "--apply", str(spool))
        assert code == 0, out
        assert (spool.stat().st_uid, stat.S_IMODE(spool.stat().st_mode)) == (user.pw_uid, 0o600)
        (backup,) = [p for p in (host.root / BACKUPS).rglob("batch") if p.is_file()]
        assert (backup.stat().st_uid, stat.S_IMODE(backup.stat().st_mode)) == (0, 0o600)
        (restore,) = [line for line in out.splitlines() if line.startswith("  install ")]
        subprocess.run(restore, shell=True, check=True, timeout=120)
        assert spool.read_bytes() == before
        assert (spool.stat().st_uid, spool.stat().st_gid) == (user.pw_uid, user.pw_gid)
        assert stat.S_IMODE(spool.stat().st_mode) == 0o600


@pytest.mark.skipif(not (IS_ROOT and HAS_USERADD), reason="needs root and useradd")
def test_a_backup_folder_owned_by_another_user_is_refused(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    base = host.root / BACKUPS
    base.mkdir(parents=True, mode=0o700)
    before = host.snapshot()
    with temporary_users(1) as (user,):
        os.chown(base, user.pw_uid, user.pw_gid)
        code, out = host.adopt(capsys, "--apply")
    assert code == 1
    assert f"the backup folder {base} is owned by uid {user.pw_uid}, not by uid 0" in out
    assert host.snapshot() == before
    assert list(base.iterdir()) == []


def test_purge_backups_removes_adopt_backups_and_nothing_else(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = host.adopt(capsys, "--apply")
    assert code == 0, out
    base = host.root / BACKUPS
    (stamp,) = base.iterdir()
    (base / "notes.txt").write_text("mine\n")
    before = host.snapshot()
    code, out = host.adopt(capsys, "--purge-backups")
    assert code == 1, out
    assert f"removed {stamp} (5 files)" in out
    assert f"left alone: {base / 'notes.txt'} (not an adopt backup)" in out
    assert sorted(p.name for p in base.iterdir()) == ["notes.txt"]
    assert host.snapshot() == before  # the crontabs are not touched
    (base / "notes.txt").unlink()
    code, out = host.adopt(capsys, "--purge-backups")
    assert code == 0, out
    assert f"no adopt backups in {base}" in out


def test_purge_backups_refuses_other_arguments(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    from cronsync.core.errors import UsageError

    with pytest.raises(UsageError, match="--purge-backups takes no SOURCE, --apply or --sync"):
        host.cli("adopt", "--purge-backups", "--apply")


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
    # was line 22, now 23: the tag names the line of the import
    assert lines[22].startswith("# cronsync-adopted (job cron-hourly, line 22): 17 *")
    assert "/etc/crontab:23 (cron-hourly)" in out
    code, again = host.adopt(capsys, "--apply", str(crontab))
    assert code == 0 and "already adopted: /etc/crontab:23 (cron-hourly)" in again
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
    assert crontab[21].startswith("# cronsync-adopted (job cron-hourly, line 22): 17 *")
    assert crontab[11] == "DB_PASSWORD='hunterZx01'"  # the line left running may use it


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


# --- origins are written by whoever can push: adopt touches only crontabs cron reads ---

OUTSIDE_LINE = b"0 1 * * * root /usr/local/bin/outside"


def plant_origin(host: Host, source: str, line: bytes, job: str = "mysqldump") -> None:
    """Push a job file whose origin comment names ``source`` line 1 with the (old
    format) digest of ``line``, as anyone who can push could, and sync it."""
    path = host.upstream.work / f"jobs/{job}.toml"
    digest = hashlib.sha256(line).hexdigest()
    path.write_text(
        f"# cronsync-import: source={source} line=1 sha256={digest}\n" + path.read_text()
    )
    host.push_and_sync("a crafted origin")


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("/etc/passwd", "root/etc/passwd"),
        ("/etc/cron.d/../passwd", "root/etc/passwd"),
        ("/var/spool/cron/crontabs/../../../../etc/passwd", "root/etc/passwd"),
        ("/../outside", "outside"),
        ("/etc/cron.d/../../../outside", "outside"),
        ("/etc/cron.d/.hidden", "root/etc/cron.d/.hidden"),
        ("/etc/cron.d/x.dpkg-old", "root/etc/cron.d/x.dpkg-old"),
        ("//etc/crontab/../passwd", "root/etc/passwd"),
    ],
)
def test_an_origin_that_is_no_crontab_cron_reads_is_refused(
    host: Host, capsys: pytest.CaptureFixture[str], source: str, target: str
) -> None:
    path = host.base / target
    if not path.exists():
        path.write_bytes(OUTSIDE_LINE + b"\n")
    first = path.read_bytes().split(b"\n")[0]
    plant_origin(host, source, first)
    before, data = host.snapshot(), path.read_bytes()
    code, out = host.adopt(capsys, "--apply")
    assert code == 1, out
    assert f"job file jobs/mysqldump.toml names {source} as its crontab" in out
    assert (
        "adopt changes only /etc/crontab, /etc/cron.d/NAME and /var/spool/cron/crontabs/USER" in out
    )
    assert path.read_bytes() == data
    assert host.snapshot() == before
    assert not (host.root / BACKUPS).exists()


def test_a_symlinked_cron_d_is_refused(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    cron_d, elsewhere = host.root / "etc/cron.d", host.base / "elsewhere"
    os.rename(cron_d, elsewhere)
    cron_d.symlink_to(elsewhere)
    before = {p.name: p.read_bytes() for p in map(secretledger.legacy_input, elsewhere.iterdir())}
    code, out = host.adopt(capsys, "--apply")
    assert code == 1, out
    assert "/etc/cron.d is a symlink: adopt follows none" in out
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == before
    assert not (host.root / BACKUPS).exists()


@pytest.mark.parametrize("relative", ["etc/crontab", "var/spool/cron/crontabs/batch"])
def test_a_crontab_that_became_a_symlink_after_the_plan_is_refused(
    host: Host, capsys: pytest.CaptureFixture[str], relative: str
) -> None:
    paths = load_config(str(host.config)).paths
    plan = plan_adopt(paths)
    assert plan.refusals == [] and plan.changes
    crontab, outside = host.root / relative, secretledger.legacy_input(host.base / "moved")
    os.rename(crontab, outside)
    crontab.symlink_to(outside)
    data = outside.read_bytes()
    with pytest.raises(AdoptRefused, match=f"/{relative} is a symlink: adopt follows none"):
        apply_adopt(plan, paths.root, datetime.now(timezone.utc))
    assert crontab.is_symlink() and outside.read_bytes() == data
    assert not (host.root / BACKUPS).exists()
    code, out = host.adopt(capsys, "--apply")  # and a plan refuses it from the start
    assert code == 1 and f"/{relative} is a symlink: adopt follows none" in out
    assert crontab.is_symlink() and outside.read_bytes() == data


@pytest.mark.parametrize(
    "source", ["/../../../escape", "/etc/cron.d/../../../../../escape", "/etc/../../x/escape"]
)
def test_a_backup_never_leaves_the_backup_folder(tmp_path: Path, source: str) -> None:
    root = tmp_path / "root"
    folder = make_backup_folder(root, datetime.now(timezone.utc))
    with pytest.raises(InstallError, match="outside the backup folder"):
        write_backup(folder, source, b"data\n", os.stat(tmp_path))
    assert [p for p in tmp_path.rglob("*escape*")] == []
    assert list(folder.iterdir()) == []


def test_no_job_file_holds_the_digest_of_a_line_with_a_secret(host: Host) -> None:
    texts = "\n".join(p.read_text() for p in (host.upstream.work / "jobs").glob("*.toml"))
    digests = set(re.findall(r"sha256=([0-9a-f]{64})", texts))
    assert len(digests) > 10
    secret_lines = [
        line
        for relative in FILES
        for line in (host.root / relative).read_bytes().split(b"\n")
        if any(secret.encode() in line for secret in SECRETS)
    ]
    assert len(secret_lines) > 10
    assert digests & {hashlib.sha256(line).hexdigest() for line in secret_lines} == set()


def test_job_files_of_the_older_digest_format_are_still_adopted(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    line = (host.root / "etc/cron.d/backup").read_bytes().split(b"\n")[4]
    job = host.upstream.work / "jobs/mysqldump.toml"
    old = f"source=/etc/cron.d/backup line=5 sha256={hashlib.sha256(line).hexdigest()}"
    text = re.sub(r"source=/etc/cron\.d/backup line=5 \S+", old, job.read_text())
    assert old in text
    job.write_text(text)
    host.push_and_sync("an older import")
    code, out = host.adopt(capsys, "--apply", str(host.root / "etc/cron.d/backup"))
    assert code == 0, out
    now = (host.root / "etc/cron.d/backup").read_text().split("\n")
    assert now[4].startswith("# cronsync-adopted (job mysqldump, line 5): 30 2 * * * root ")
