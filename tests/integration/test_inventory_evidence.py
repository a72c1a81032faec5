"""``cronsync inventory --evidence`` and import's MIGRATION.md on a sandbox host whose
cron logs are written as Debian writes them: rsyslog's RFC 3339 ``/var/log/syslog``, an
older traditional ``syslog.1``, a gzipped ``syslog.2.gz``, and a ``journalctl -o json``
export read through ``--journal-file`` (the journal seam)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from test_inventory_users import run_verb

from helpers.sandbox import GIT_ENV
from helpers.secretledger import legacy_input

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
PASSWORD = "Tr0ub4dor-and-3"
CRONTAB = f"""\
SHELL=/bin/sh
15 3 * * * root /opt/jobs/backup.sh >> /var/log/backup.log 2>&1
20 3 * * * root /opt/jobs/report.sh > /dev/null 2>&1
25 3 * * * root /opt/jobs/gone.sh
30 3 * * * batch /opt/jobs/sync.sh --password={PASSWORD}
30 3 * * * root /opt/jobs/sync.sh --password={PASSWORD}
"""
PASSWD = "root:x:0:0:root:/root:/bin/bash\nbatch:x:1001:1001::/home/batch:/bin/bash\n"


def _day(days_ago: int, hour: int, minute: int) -> datetime:
    moment = (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=minute, second=1)
    return moment


def _traditional(at: datetime, pid: int, message: str) -> str:
    return (
        f"{at.strftime('%b')} {at.day:2d} {at.strftime('%H:%M:%S')} batch-1 CRON[{pid}]: {message}"
    )


def _rfc3339(at: datetime, pid: int, message: str) -> str:
    return f"{at.strftime('%Y-%m-%dT%H:%M:%S')}.000123+00:00 batch-1 CRON[{pid}]: {message}"


def _cmd(user: str, command: str) -> str:
    return f"({user}) CMD ({command})"


def _write(path: Path, text: str, mtime: datetime, gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    legacy_input(path)  # the legacy host's logs hold its inline passwords, as cron logged them
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def _host(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    _write(root / "etc/passwd", PASSWD, NOW)
    (root / "etc/timezone").write_text("UTC\n")
    _write(root / "etc/cron.d/jobs", CRONTAB, NOW)
    for name in ("backup.sh", "report.sh", "sync.sh"):
        _write(root / "opt/jobs" / name, "#!/bin/sh\necho hi\n", NOW - timedelta(days=200))
    git_env = {**os.environ, **GIT_ENV}  # no identity of the machine's user needed
    for args in (["init", "-q"], ["add", "backup.sh"], ["commit", "-q", "-m", "backup"]):
        subprocess.run(
            ["git", "-C", str(root / "opt/jobs"), *args], check=True, timeout=30, env=git_env
        )
    _write(root / "var/log/backup.log", "done\n", _day(1, 3, 16))
    logs = root / "var/log"
    sync = f"/opt/jobs/sync.sh --password={PASSWORD}"
    gz_lines = [
        _traditional(
            _day(6, 3, 15), 100, _cmd("root", "/opt/jobs/backup.sh >> /var/log/backup.log 2>&1")
        )
    ]
    old_lines = [
        _traditional(
            _day(4, 3, 15), 200, _cmd("root", "/opt/jobs/backup.sh >> /var/log/backup.log 2>&1")
        ),
        _traditional(_day(4, 3, 20), 201, _cmd("root", "/opt/jobs/report.sh > /dev/null 2>&1")),
        _traditional(_day(4, 3, 30), 202, _cmd("batch", sync)),
        _traditional(_day(4, 3, 30), 203, _cmd("root", sync)),
        _traditional(
            _day(4, 3, 40), 204, _cmd("root", f"/opt/old/removed.sh --password={PASSWORD}")
        ),
    ]
    new_lines = [
        _rfc3339(
            _day(1, 3, 15), 300, _cmd("root", "/opt/jobs/backup.sh >> /var/log/backup.log 2>&1")
        ),
        _rfc3339(_day(1, 3, 20), 301, _cmd("root", "/opt/jobs/report.sh > /dev/null 2>&1")),
    ]
    _write(logs / "syslog.2.gz", "\n".join(gz_lines) + "\n", _day(5, 0, 0), gz=True)
    _write(logs / "syslog.1", "\n".join(old_lines) + "\n", _day(3, 0, 0))
    _write(logs / "syslog", "\n".join(new_lines) + "\n", _day(1, 4, 0))
    return root


def test_inventory_evidence_names_verdicts_evidence_and_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _host(tmp_path)
    code, out = run_verb("inventory", ["--root", str(root), "--evidence", "--json"], capsys)
    assert code == 0, out
    assert PASSWORD not in out
    doc = json.loads(out)
    verdicts = {(e["line"], e["evidence"]["verdict"]) for e in doc["entries"]}
    assert verdicts == {(2, "alive"), (3, "silent"), (4, "dead"), (5, "alive"), (6, "alive")}
    by_line = {e["line"]: e["evidence"] for e in doc["entries"]}
    backup = by_line[2]
    assert backup["runs"] == 3  # syslog, syslog.1 and syslog.2.gz
    assert backup["script"]["last_commit"]
    assert backup["writes"][0]["path"] == "/var/log/backup.log"
    assert "/opt/jobs/gone.sh does not exist" in " ".join(by_line[4]["evidence"])
    # the same command for batch and for root: the user tells them apart
    assert by_line[5]["runs"] == 1 and by_line[6]["runs"] == 1
    period = doc["evidence"]["period"]
    assert period[0].startswith(_day(6, 3, 15).strftime("%Y-%m-%d"))
    assert doc["evidence"]["sources"] == [
        "/var/log/syslog.2.gz",
        "/var/log/syslog.1",
        "/var/log/syslog",
    ]
    [unmatched] = doc["evidence"]["unmatched"]
    assert unmatched["command"].startswith("/opt/old/removed.sh") and "***" in unmatched["command"]

    code, text = run_verb("inventory", ["--root", str(root), "--evidence"], capsys)
    assert PASSWORD not in text
    assert "/etc/cron.d/jobs:4  dead" in text
    assert "evidence from /var/log/syslog.2.gz, /var/log/syslog.1, /var/log/syslog" in text


def test_journal_file_is_read_through_the_seam(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _host(tmp_path)
    at = _day(0, 0, 0) if _day(0, 0, 0) < NOW else _day(1, 23, 0)
    entry = {
        "__REALTIME_TIMESTAMP": str(int(at.timestamp() * 1_000_000)),
        "SYSLOG_IDENTIFIER": "CRON",
        "_PID": "900",
        "MESSAGE": "(root) CMD (/opt/jobs/backup.sh >> /var/log/backup.log 2>&1)",
    }
    journal = tmp_path / "cron.json"
    journal.write_text(json.dumps(entry) + "\n")
    argv = ["--root", str(root), "--evidence", "--journal-file", str(journal), "--json"]
    _code, out = run_verb("inventory", argv, capsys)
    doc = json.loads(out)
    backup = next(e["evidence"] for e in doc["entries"] if e["line"] == 2)
    assert backup["runs"] == 4
    assert doc["evidence"]["sources"][0] == f"journal ({journal})"


def test_a_missing_journal_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _host(tmp_path)
    from cronsync.core.errors import UsageError

    with pytest.raises(UsageError, match=r"--journal-file .*: No such file"):
        run_verb(
            "inventory",
            ["--root", str(root), "--evidence", "--journal-file", str(tmp_path / "x")],
            capsys,
        )
    with pytest.raises(UsageError, match=r"--journal-file /dev/zero: not a file or a pipe"):
        run_verb(  # a device would be read for ever
            "inventory", ["--root", str(root), "--evidence", "--journal-file", "/dev/zero"], capsys
        )
    with pytest.raises(UsageError, match="--journal-file needs --evidence"):
        run_verb("inventory", ["--root", str(root), "--journal-file", str(tmp_path / "x")], capsys)


def test_import_writes_the_evidence_into_migration_md(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _host(tmp_path)
    into = tmp_path / "repo"
    argv = ["--root", str(root), "--into", str(into), "--secrets-file", str(tmp_path / "s.toml")]
    code, out = run_verb("import", argv, capsys)
    assert code == 0, out
    report = (into / "MIGRATION.md").read_text()
    assert PASSWORD not in report
    assert "## Evidence of life" in report
    assert "- Evidence: **alive**" in report
    assert "**dead**" in report and "/opt/jobs/gone.sh does not exist" in report
    assert "`cronsync migration`" in report  # the checklist points to the ledger


ALICE_UID = 4242
ROOT_ONLY = "ERROR root-only-content-Q7"


def _alice_host(tmp_path: Path) -> Path:
    """A sandbox whose user alice's crontab names files she does not own: a root-only
    log, a symlink to it, a path climbing out of the root; and her own log."""
    root = tmp_path / "root"
    passwd = PASSWD + f"alice:x:{ALICE_UID}:{ALICE_UID}::/home/alice:/bin/sh\n"
    _write(root / "etc/passwd", passwd, NOW)
    (root / "etc/timezone").write_text("UTC\n")
    home = root / "home/alice"
    recent = _day(0, 0, 0) if _day(0, 0, 0) < NOW else _day(1, 23, 0)
    for name, text in (("own.log", "ERROR alice's own failure\n"), ("job.sh", "#!/bin/sh\n")):
        _write(home / name, text, recent)
        os.chown(home / name, ALICE_UID, ALICE_UID)
    _write(root / "root/secret.log", ROOT_ONLY + "\n", recent)
    os.chmod(root / "root/secret.log", 0o600)
    (home / "link.log").symlink_to("/root/secret.log")  # absolute: the real host's
    (home / "rel.log").symlink_to("../../root/secret.log")
    os.lchown(home / "link.log", ALICE_UID, ALICE_UID)
    _write(tmp_path / "outside.log", ROOT_ONLY + "\n", recent)
    lines = [
        "0 * * * * /home/alice/job.sh >> /root/secret.log 2>&1",
        "1 * * * * /home/alice/job.sh >> /home/alice/link.log 2>&1",
        "2 * * * * /home/alice/job.sh >> /home/alice/rel.log 2>&1",
        "3 * * * * /home/alice/job.sh >> /../outside.log 2>&1",
        "4 * * * * /home/alice/job.sh >> /home/alice/own.log 2>&1",
    ]
    spool = root / "var/spool/cron/crontabs"
    _write(spool / "alice", "\n".join(lines) + "\n", NOW)
    os.chown(spool / "alice", ALICE_UID, 0)
    os.chmod(spool / "alice", 0o600)
    ran = recent - timedelta(minutes=1)
    log = [_rfc3339(ran, 500 + n, _cmd("alice", line[10:])) for n, line in enumerate(lines)]
    _write(root / "var/log/syslog", "\n".join(log) + "\n", recent)
    return root


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: files owned by another user")
def test_root_never_quotes_a_file_a_user_crontab_merely_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _alice_host(tmp_path)
    code, out = run_verb("inventory", ["--root", str(root), "--evidence", "--json"], capsys)
    assert "root-only-content" not in out
    doc = json.loads(out)
    by_line = {e["line"]: e["evidence"] for e in doc["entries"]}
    assert [by_line[n]["verdict"] for n in (1, 2, 3, 4, 5)] == [
        "unknown",
        "unknown",
        "unknown",
        "unknown",
        "failing",
    ]
    assert "not alice's" in " ".join(by_line[1]["evidence"])
    assert "symbolic link" in " ".join(by_line[2]["evidence"])
    assert "symbolic link" in " ".join(by_line[3]["evidence"])
    assert ".." in " ".join(by_line[4]["evidence"])
    assert "alice's own failure" in " ".join(by_line[5]["evidence"])
    into = tmp_path / "repo"
    argv = ["--root", str(root), "--into", str(into), "--secrets-file", str(tmp_path / "s.toml")]
    code, out = run_verb("import", argv, capsys)
    assert code == 0, out
    assert "root-only-content" not in (into / "MIGRATION.md").read_text()


def test_a_journal_that_cannot_be_read_or_is_empty_is_said(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from cronsync.migrate.cronlogs import JournalNotRead, read_cron_logs

    root = _host(tmp_path)

    def failing() -> tuple[str, str]:
        raise JournalNotRead("journalctl exited with 1: Failed to open journal")

    logs = read_cron_logs(root, ZoneInfo("UTC"), failing)
    assert "journal not read: journalctl exited with 1: Failed to open journal" in logs.notes
    assert logs.sources[-1] == "/var/log/syslog"  # the files are read all the same
    logs = read_cron_logs(root / "nothing", ZoneInfo("UTC"), lambda: ("journal (j)", ""))
    assert logs.sources == [] and logs.read.first is None
    assert any("journal (j) holds no line" in note for note in logs.notes)
    assert any(note.startswith("no cron log found") for note in logs.notes)
