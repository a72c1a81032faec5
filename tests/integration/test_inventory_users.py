"""Crontabs given on the command line are checked against this host's users: Debian's
cron ignores a whole system crontab for one line naming a user it does not have, and a
user crontab whose owner does not exist (FACTS.md). ``--any-users`` skips the check and
the output says so; ``cronsync import`` imports such jobs and names the user under
"Left for a person".

The verbs run in process on a parser of our own; a host root's ``etc/passwd`` is the
user database (``--root``), except where the real one (``pwd``) is the point.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
from pathlib import Path

import pytest

from cronsync.cli.inventory import add_inventory_verb
from cronsync.cli.migrate import add_import_verbs
from cronsync.core.errors import UsageError
from cronsync.crontab.hostfiles import read_crontab_file, user_lookup
from helpers.crontabdata import DATA

NOT_CHECKED = "users were not checked against this host (--any-users)"


def run_verb(verb: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")
    add = add_inventory_verb if verb == "inventory" else add_import_verbs
    add(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
    args = parser.parse_args([verb, *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out + err


def host_with(tmp_path: Path, *users: str) -> Path:
    """A host root whose user database holds ``users`` (uids from 1000)."""
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    lines = ["root:x:0:0:root:/root:/bin/bash"]
    lines += [f"{u}:x:{1000 + n}:{1000 + n}::/home/{u}:/bin/sh" for n, u in enumerate(users)]
    (root / "etc/passwd").write_text("\n".join(lines) + "\n")
    (root / "etc/timezone").write_text("UTC\n")
    return root


def entries(out: str) -> dict[int, dict[str, object]]:
    return {e["line"]: e for e in json.loads(out)["entries"]}


def test_an_unknown_user_makes_cron_ignore_the_whole_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_with(tmp_path, "tomcat8")
    source = str(DATA / "vendor-users")
    code, out = run_verb("inventory", ["--system", source, "--root", str(root)], capsys)
    assert code == 1
    assert (
        f"{source}: cron ignores this whole file because of line 4: unknown user 'oracle'"
    ) in out
    code, out = run_verb("inventory", ["--system", source, "--root", str(root), "--json"], capsys)
    found = entries(out)
    assert {n: e["state"] for n, e in found.items()} == {
        3: "ignored (whole file)",
        4: "ignored (bad line)",
        5: "ignored (whole file)",
    }
    assert found[4]["problems"] == ["cron rejects this line: unknown user 'oracle'"]
    assert json.loads(out)["users_checked"] is True
    assert NOT_CHECKED not in out


def test_any_users_skips_the_check_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_with(tmp_path)
    argv = ["--system", str(DATA / "vendor-users"), "--root", str(root), "--any-users"]
    code, out = run_verb("inventory", argv, capsys)
    assert code == 0
    assert "ignored" not in out
    assert out.rstrip().endswith(f"note: {NOT_CHECKED}")
    code, out = run_verb("inventory", [*argv, "--json"], capsys)
    document = json.loads(out)
    assert document["users_checked"] is False
    assert NOT_CHECKED in document["notes"]
    assert {e["state"] for e in document["entries"]} == {"runs"}


def test_the_owner_of_a_user_crontab_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_with(tmp_path, "batch")
    dump = str(DATA / "crontab-l-dump")
    code, out = run_verb("inventory", ["--user", "ghost", dump, "--root", str(root)], capsys)
    assert code == 1
    assert f"{dump}: cron ignores this whole file: there is no user 'ghost' (ORPHAN)" in out
    code, out = run_verb("inventory", ["--user", "batch", dump, "--root", str(root)], capsys)
    assert code == 0
    argv = ["--user", "ghost", dump, "--root", str(root), "--any-users", "--json"]
    code, out = run_verb("inventory", argv, capsys)
    assert code == 0 and json.loads(out)["users_checked"] is False


# Real-world system crontabs of the corpus and the users each names besides root.
SYSTEM_CRONTABS = {
    "legacy-etc-crontab": {"batch"},
    "cron.d-backup": {"postgres"},
    "tabs-system": {"www-data"},
    "duplicates": {"batch"},
    "commented-out": set(),
    "cron-tz": set(),
    "vendor-users": {"oracle", "tomcat8"},
}


@pytest.mark.parametrize("name", sorted(SYSTEM_CRONTABS))
def test_real_world_crontabs_on_a_host_without_their_users(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(DATA / name)
    bare = host_with(tmp_path / "bare")
    code, out = run_verb("inventory", ["--system", source, "--root", str(bare), "--json"], capsys)
    report = json.loads(out)["files"][0]
    assert code == 1 or not SYSTEM_CRONTABS[name]
    assert report["ignored"] is bool(SYSTEM_CRONTABS[name])
    for user in SYSTEM_CRONTABS[name]:
        assert any(f"unknown user '{user}'" in p for p in report["problems"]) or any(
            f"unknown user '{user}'" in p for e in entries(out).values() for p in e["problems"]
        )
    full = host_with(tmp_path / "full", *SYSTEM_CRONTABS[name])
    _code, out = run_verb("inventory", ["--system", source, "--root", str(full), "--json"], capsys)
    assert json.loads(out)["files"][0]["ignored"] is False


def test_without_a_root_the_user_database_of_this_host_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if Path("/etc/cronsync/agent.toml").exists():
        pytest.skip("this machine has an agent config: inventory would read its root")
    monkeypatch.delenv("CRONSYNC_CONFIG", raising=False)
    ghost = "cronsync-test-ghost"
    with pytest.raises(KeyError):
        pwd.getpwnam(ghost)
    me = pwd.getpwuid(os.getuid()).pw_name
    source = tmp_path / "crontab"
    source.write_text(f"0 1 * * * {me} /bin/true\n")
    assert run_verb("inventory", ["--system", str(source)], capsys)[0] == 0
    source.write_text(f"0 1 * * * {me} /bin/true\n0 2 * * * {ghost} /bin/true\n")
    code, out = run_verb("inventory", ["--system", str(source)], capsys)
    assert code == 1 and f"unknown user '{ghost}'" in out
    lookup = user_lookup(Path("/"))
    assert lookup is not None and me in lookup and ghost not in lookup
    orphan = read_crontab_file(source, ghost, users=lookup)
    assert orphan.ignored and "there is no user 'cronsync-test-ghost'" in orphan.problems[0]


def test_any_users_needs_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = host_with(tmp_path)
    with pytest.raises(UsageError, match="--any-users applies to FILES"):
        run_verb("inventory", ["--root", str(root), "--any-users"], capsys)


def test_import_names_users_this_host_lacks_left_for_a_person(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_with(tmp_path, "tomcat8")
    repo = tmp_path / "repo"
    argv = ["--system", str(DATA / "vendor-users"), "--root", str(root), "--into", str(repo)]
    code, out = run_verb("import", [*argv, "--secrets-file", str(tmp_path / "s.toml")], capsys)
    assert code == 0, out
    migration = (repo / "MIGRATION.md").read_text()
    oracle = migration[migration.index("### `rman_backup`") :].split("\n### ")[0]
    person = oracle[oracle.index("- Left for a person:") :]
    assert "- [ ] user 'oracle' does not exist on this host" in person
    tomcat = migration[migration.index("### `cleanup-logs`") :].split("\n### ")[0]
    assert "does not exist on this host" not in tomcat
