"""Reading a host's crontabs (cronsync.crontab.hostfiles) and ``cronsync inventory`` on a fake root.

The fake root holds etc/crontab, etc/cron.d/* and var/spool/cron/crontabs/* made from
the test corpus in tests/data/crontabs, plus the files cron refuses (dotted names, wrong
mode, wrong owner, hard links, orphans). The verb is driven through
``add_inventory_verb`` on a parser of our own, in process and in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cronsync.cli.inventory import add_inventory_verb
from cronsync.crontab.hostfiles import host_users, read_crontab_file, read_host_crontabs
from helpers.crontabdata import DATA, SECRETS, put

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
postgres:x:105:110::/var/lib/postgresql:/bin/bash
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
batch:x:1001:1001::/home/batch:/bin/bash
alice:x:1002:1002::/home/alice:/bin/bash
"""
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A host root with crontabs of every kind."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/passwd").write_text(PASSWD)
    (host / "etc/timezone").write_text("UTC\n")
    put(host / "etc/crontab", "legacy-etc-crontab")
    cron_d = host / "etc/cron.d"
    put(cron_d / "backup", "cron.d-backup")
    put(cron_d / "secrets", "inline-secrets")
    put(cron_d / "cronsync", "cronsync-managed")
    put(cron_d / "report.cron", "tabs-system")
    put(cron_d / "backup~", "cron.d-backup")
    put(cron_d / ".backup.swp", "cron.d-backup")
    (cron_d / ".placeholder").write_text(  # Debian's cron package ships it
        "# DO NOT EDIT OR REMOVE\n# This file is a simple placeholder to keep dpkg from "
        "removing this directory\n"
    )
    put(cron_d / "group-writable", "tabs-system", 0o664)
    put(cron_d / "broken", "one-bad-line")
    (cron_d / "dangling").symlink_to(tmp_path / "nowhere")
    spool = host / "var/spool/cron/crontabs"
    put(spool / "batch", "crontab-l-dump", 0o600)
    put(spool / "alice", "crlf-user", 0o644)
    put(spool / "ghost", "crlf-user", 0o600)
    return host


def snapshot(root: Path) -> dict[str, tuple[bytes, int, float]]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            found[str(path)] = (path.read_bytes(), info.st_mode, info.st_mtime)
    return found


def by_source(files: list[Any]) -> dict[str, Any]:
    return {crontab.source: crontab for crontab in files}


def run_verb(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")

    def add_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", metavar="PATH")

    add_inventory_verb(verbs, add_config)
    args = parser.parse_args(["inventory", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out + err


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


# --- the adapter ---------------------------------------------------------------------


def test_reads_every_crontab_cron_looks_at_and_refusals(root: Path) -> None:
    files = by_source(read_host_crontabs(root))
    assert sorted(files) == [
        "/etc/cron.d/.backup.swp",
        "/etc/cron.d/backup",
        "/etc/cron.d/backup~",
        "/etc/cron.d/broken",
        "/etc/cron.d/cronsync",
        "/etc/cron.d/dangling",
        "/etc/cron.d/group-writable",
        "/etc/cron.d/report.cron",
        "/etc/cron.d/secrets",
        "/etc/crontab",
        "/var/spool/cron/crontabs/alice",
        "/var/spool/cron/crontabs/batch",
        "/var/spool/cron/crontabs/ghost",
    ]
    fine = ["/etc/crontab", "/etc/cron.d/backup", "/etc/cron.d/secrets", "/etc/cron.d/broken"]
    for source in [*fine, "/var/spool/cron/crontabs/batch"]:
        assert not files[source].ignored, files[source].problems
    assert files["/etc/crontab"].system and files["/etc/crontab"].user is None
    batch = files["/var/spool/cron/crontabs/batch"]
    assert (batch.system, batch.user) == (False, "batch")
    assert files["/etc/cron.d/report.cron"].problems == (
        "cron ignores this whole file: its name contains '.' (cron.d names may only use "
        "letters, digits, '-' and '_')",
    )
    assert "'~'" in files["/etc/cron.d/backup~"].problems[0]
    assert files["/etc/cron.d/.backup.swp"].ignored
    assert (
        "0664 is group/other-writable (INSECURE MODE)"
        in files["/etc/cron.d/group-writable"].problems[0]
    )
    assert (
        "mode 0644, cron wants exactly 0600" in files["/var/spool/cron/crontabs/alice"].problems[0]
    )
    assert "no user 'ghost' (ORPHAN)" in files["/var/spool/cron/crontabs/ghost"].problems[0]
    dangling = files["/etc/cron.d/dangling"]
    assert dangling.text is None and dangling.problems[0].startswith("cannot read:")


def test_a_dotted_file_with_nothing_to_run_is_not_a_finding(root: Path) -> None:
    sources = set(by_source(read_host_crontabs(root)))
    assert "/etc/cron.d/.placeholder" not in sources  # holds nothing: nothing is lost
    assert "/etc/cron.d/.backup.swp" in sources  # holds jobs cron will not run


def test_hard_links_and_symlinks(root: Path, tmp_path: Path) -> None:
    cron_d = root / "etc/cron.d"
    os.link(cron_d / "backup", tmp_path / "second-name")
    target = put(tmp_path / "target", "tabs-system")
    (cron_d / "linked").symlink_to(target)
    (root / "var/spool/cron/crontabs/postgres").symlink_to(target)
    files = by_source(read_host_crontabs(root))
    assert "2 hard links" in files["/etc/cron.d/backup"].problems[0]
    assert not files["/etc/cron.d/linked"].ignored
    assert files["/etc/cron.d/linked"].text == target.read_text()
    spool_link = files["/var/spool/cron/crontabs/postgres"]
    assert spool_link.ignored and "not a symlink" in spool_link.problems[0]


@AS_ROOT
def test_wrong_owner(root: Path) -> None:
    os.chown(root / "etc/cron.d/backup", 1002, 0)
    os.chown(root / "var/spool/cron/crontabs/batch", 1002, 0)
    files = by_source(read_host_crontabs(root))
    assert "not root (WRONG FILE OWNER)" in files["/etc/cron.d/backup"].problems[0]
    assert (
        "not by batch or root (WRONG FILE OWNER)"
        in files["/var/spool/cron/crontabs/batch"].problems[0]
    )
    os.chown(root / "var/spool/cron/crontabs/batch", 1001, 0)  # its own user is fine
    assert not by_source(read_host_crontabs(root))["/var/spool/cron/crontabs/batch"].ignored


def test_users_come_from_the_roots_passwd(root: Path, tmp_path: Path) -> None:
    assert host_users(root) == {
        "root": 0,
        "postgres": 105,
        "www-data": 33,
        "batch": 1001,
        "alice": 1002,
    }
    assert host_users(tmp_path / "empty") is None
    assert "root" in (host_users(Path("/")) or {})


def test_read_crontab_file_for_dumps(tmp_path: Path) -> None:
    dump = read_crontab_file(DATA / "crontab-l-dump", user="batch")
    assert (dump.system, dump.user, dump.problems) == (False, "batch", ())
    system = read_crontab_file(DATA / "legacy-etc-crontab", user="ignored", system=True)
    assert (system.system, system.user) == (True, None)
    missing = read_crontab_file(tmp_path / "nope")
    assert missing.text is None and "cannot read" in missing.problems[0]
    latin = tmp_path / "latin1"
    latin.write_bytes(b"0 1 * * * /opt/caf\xe9.sh\n")
    decoded = read_crontab_file(latin)
    assert decoded.text == "0 1 * * * /opt/caf\ufffd.sh\n" and "not UTF-8" in decoded.problems[0]


def test_nothing_is_modified(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(root)
    run_verb(["--root", str(root), "--json"], capsys)
    run_verb(["--root", str(root)], capsys)
    assert snapshot(root) == before


# --- the verb ------------------------------------------------------------------------


def test_inventory_json_of_the_host(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_verb(["--root", str(root), "--json"], capsys)
    assert code == 1  # broken, report.cron, ... hold entries cron does not run
    assert_no_secret(out)
    doc = json.loads(out)
    assert doc["inventory_format"] == 1
    entries = {(e["source"], e["line"]): e for e in doc["entries"]}
    hourly = entries[("/etc/crontab", 22)]
    assert (hourly["user"], hourly["state"], hourly["runs"]) == ("root", "runs", True)
    assert hourly["description"] == "every hour at minute 17"
    assert entries[("/etc/cron.d/cronsync", 8)]["state"] == "managed"
    assert entries[("/etc/cron.d/report.cron", 2)]["state"] == "ignored (whole file)"
    assert entries[("/etc/cron.d/broken", 3)]["state"] == "ignored (bad line)"
    assert entries[("/var/spool/cron/crontabs/batch", 16)]["state"] == "commented-out"
    assert entries[("/var/spool/cron/crontabs/batch", 13)]["stdin"].startswith("Good morning,\n")
    assert (
        entries[("/etc/cron.d/secrets", 6)]["command"]
        == "mysqldump -uroot -p*** shop > /backup/shop.sql"
    )
    files = {f["source"]: f for f in doc["files"]}
    assert files["/etc/cron.d/cronsync"]["managed"] is True
    assert files["/etc/cron.d/dangling"]["readable"] is False
    assert doc["summary"]["commented_out"] == 2


def test_inventory_table_lists_entries_and_problems(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_verb(["--root", str(root)], capsys)
    assert code == 1
    assert_no_secret(out)
    lines = out.splitlines()
    assert lines[0].split() == [
        "SOURCE:LINE",
        "USER",
        "SCHEDULE",
        "WHEN",
        "NEXT",
        "RUN",
        "STATE",
        "COMMAND",
    ]
    assert any(line.startswith("/etc/crontab:22 ") and " runs " in line for line in lines)
    assert "/etc/cron.d/report.cron: cron ignores this whole file: its name contains '.'" in out
    assert "/etc/cron.d/broken: cron ignores this whole file because of line 3" in out
    assert "/var/spool/cron/crontabs/alice:4: the line ends with a carriage return" in out
    assert "/srv/app/bin/nightly.sh\\r" in out


def test_unmanaged_only_and_a_clean_host_exits_0(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in os.listdir(root / "etc/cron.d"):
        if name not in ("backup", "cronsync"):
            (root / "etc/cron.d" / name).unlink()
    shutil.rmtree(root / "var/spool/cron/crontabs")
    code, out = run_verb(["--root", str(root), "--json", "--unmanaged-only"], capsys)
    doc = json.loads(out)
    assert code == 0, out
    assert {e["source"] for e in doc["entries"]} == {"/etc/crontab", "/etc/cron.d/backup"}
    code, out = run_verb(["--root", str(root), "--json"], capsys)
    assert "/etc/cron.d/cronsync" in {e["source"] for e in json.loads(out)["entries"]}


def test_files_on_the_command_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = run_verb(
        ["--root", str(tmp_path), "--user", "batch", "--json", str(DATA / "crontab-l-dump")], capsys
    )
    assert code == 0
    entries = json.loads(out)["entries"]
    assert {e["user"] for e in entries} == {"batch"}
    code, out = run_verb(
        ["--root", str(tmp_path), "--system", "--json", str(DATA / "inline-secrets")], capsys
    )
    assert code == 0
    assert_no_secret(out)
    code, out = run_verb(["--root", str(tmp_path), str(DATA / "one-bad-line")], capsys)
    assert code == 1  # read as a user crontab: line 3 (minute 61) is still bad


def test_system_and_user_exclude_each_other(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cronsync.core.errors import UsageError

    with pytest.raises(UsageError):
        run_verb(["--root", str(tmp_path), "--system", "--user", "x", "f"], capsys)


def test_root_and_zone_from_the_agent_config(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[repo]\nurl = "https://git.example.com/jobs.git"\n\n'
        '[host]\nname = "batch-1"\ntimezone = "Asia/Tokyo"\n\n'
        f"[paths]\nroot = {json.dumps(str(root))}\n"
    )
    code, out = run_verb(["--config", str(config), "--json"], capsys)
    assert code == 1  # etc/cron.d/broken and the refused files
    entries = {(e["source"], e["line"]): e for e in json.loads(out)["entries"]}
    assert entries[("/etc/crontab", 22)]["next_run"].endswith("+09:00")


def test_inventory_in_a_subprocess(root: Path) -> None:
    script = (
        "import argparse, sys\n"
        "from cronsync.cli.inventory import add_inventory_verb\n"
        "parser = argparse.ArgumentParser(prog='cronsync')\n"
        "verbs = parser.add_subparsers()\n"
        "add_inventory_verb(verbs, lambda p: p.add_argument('--config'))\n"
        "args = parser.parse_args(['inventory', *sys.argv[1:]])\n"
        "sys.exit(args.func(args))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CRONSYNC_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-c", script, "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1, result.stderr
    assert_no_secret(result.stdout + result.stderr)
    doc = json.loads(result.stdout)
    assert doc["summary"]["files"] == 13


def test_without_a_passwd_file_inventory_says_users_are_not_checked(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "etc/passwd").unlink()
    code, out = run_verb(["--root", str(root)], capsys)
    assert "note: cannot read" in out and "users of system crontabs" in out
    assert code == 1
