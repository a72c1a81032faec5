"""``cronsync adopt --json``: the dry run, --apply, a refusal, --purge-backups and
--apply --sync each print one document (format cronsync.adopt/1) and nothing else on
stdout, secrets masked as in the text."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cronsync.migrate import cutover
from helpers.crontabdata import SECRETS
from helpers.legacyhost import Host, origins_of

BACKUPS = "var/lib/cronsync/adopt-backups"


@pytest.fixture
def host(tmp_path: Path, git_env: None, capsys: pytest.CaptureFixture[str]) -> Host:
    """The host after `cronsync import` into the upstream, pushed and synced."""
    box = Host.imported_and_synced(tmp_path)
    capsys.readouterr()
    return box


def run_json(
    host: Host, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, dict[str, Any], str]:
    code, _ = host.cli("adopt", "--json", *argv)
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out + err
    return code, json.loads(out), err


def test_dry_run_json_lists_every_line_and_changes_nothing(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    before = host.snapshot()

    code, doc, _err = run_json(host, capsys)

    assert code == 0
    assert doc["format"] == "cronsync.adopt/1"
    assert (doc["action"], doc["ok"], doc["changed"]) == ("dry-run", True, False)
    assert len(doc["commit"]) == 40 and doc["jobs"] > 0
    by_job = [line for line in doc["lines"] if line["job"] is not None]
    wanted = origins_of(host)
    assert len(by_job) == sum(len(lines) for lines in wanted.values())
    unused = [line for line in doc["lines"] if line["job"] is None]
    assert len(unused) == 4 and all(
        line["why"] == "secret setting no job uses now" for line in unused
    )
    backup = [line for line in by_job if line["source"] == "/etc/cron.d/backup"]
    assert any("mysqldump -u backup -p***" in line["text"] for line in backup)
    assert doc["refusals"] == [] and doc["backups"] is None and doc["restore"] == []
    assert host.snapshot() == before


def test_apply_json_names_the_backups_and_restore_commands(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, _err = run_json(host, capsys, "--apply")

    assert code == 0
    assert (doc["action"], doc["ok"], doc["changed"]) == ("apply", True, True)
    assert doc["backups"].startswith(str(host.root / BACKUPS))
    assert len(doc["restore"]) == 5 and all(c.startswith("install ") for c in doc["restore"])

    code, again, _err = run_json(host, capsys, "--apply")
    assert code == 0 and again["lines"] == [] and again["changed"] is False
    assert len(again["already_adopted"]) == len(doc["lines"]) - 4


def test_a_refusal_is_a_document_with_ok_false(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = host.root / "etc/cron.d/backup"
    backup.write_text(backup.read_text().replace("--keep 28", "--keep 30"))
    before = host.snapshot()

    code, doc, _err = run_json(host, capsys, "--apply")

    assert code == 1
    assert (doc["ok"], doc["changed"]) == (False, False)
    assert any("changed since the import" in r for r in doc["refusals"])
    assert host.snapshot() == before


def test_purge_backups_json(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    assert host.cli("adopt", "--apply")[0] == 0
    capsys.readouterr()
    base = host.root / BACKUPS
    (stamp,) = base.iterdir()
    (base / "notes.txt").write_text("mine\n")

    code, doc, _err = run_json(host, capsys, "--purge-backups")

    assert code == 1
    assert (doc["action"], doc["ok"], doc["base"]) == ("purge-backups", False, str(base))
    assert doc["removed"] == [{"path": str(stamp), "files": 5}]
    assert doc["left"] == [{"path": str(base / "notes.txt"), "why": "not an adopt backup"}]


def test_sync_json_has_the_sync_and_the_adopt(
    host: Host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cutover, "seconds_to_wait", lambda _now: 0.0)

    code, doc, _err = run_json(host, capsys, "--apply", "--sync")

    assert code == 0
    assert (doc["action"], doc["ok"], doc["changed"]) == ("sync", True, True)
    assert doc["sync"]["result"] in ("installed", "unchanged")
    assert doc["sync"]["exit_code"] == 0
    assert doc["crossed_minute"] is None or isinstance(doc["crossed_minute"], str)
    assert len(doc["restore"]) == 5


def test_restore_commands_in_json_work(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    before = host.snapshot()
    code, doc, _err = run_json(host, capsys, "--apply")
    assert code == 0
    for command in doc["restore"]:
        subprocess.run(command, shell=True, check=True, timeout=120)
    assert {k: v[:2] for k, v in host.snapshot().items()} == {k: v[:2] for k, v in before.items()}


def test_a_refused_sync_json_retires_nothing(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    job = next((host.upstream.work / "jobs").glob("*.toml"))
    job.write_text(job.read_text() + "schedule_typo = 1\n")
    host.upstream.commit_and_push("a broken job")
    before = host.snapshot()

    code, doc, _err = run_json(host, capsys, "--apply", "--sync")

    assert code == 1
    assert (doc["action"], doc["ok"], doc["changed"]) == ("sync", False, False)
    assert doc["sync"]["result"] == "refused"
    assert any("schedule_typo" in problem["field"] for problem in doc["sync"]["errors"])
    assert "nothing retired" in doc["refusals"][0]
    assert host.snapshot() == before
