"""No secret written in a crontab reaches anything cronsync prints or writes, whatever
the state of its line: valid, rejected by cron, in a file cron ignores, an environment
line, a commented-out job, a line that is no entry at all, or a file read in the wrong
format (a system crontab read as a user's, or the reverse).

The outputs walked: ``cronsync inventory`` (table and ``--json``) and ``cronsync import``
(its summary, ``--json``, MIGRATION.md, every job file and cronsync.toml). Only the
secrets file (the secret store, outside the repository) may hold a value. The verbs
run in process on a parser of our own, against a host root with its own ``etc/passwd``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

import pytest

from cronsync.cli.inventory import add_inventory_verb
from cronsync.cli.migrate import add_import_verbs
from helpers import secretledger
from helpers.crontabdata import DATA, SECRETS

PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"
SECRET = "p4ssZx91w0rd"
S = SECRET

# One crontab per line state; each is read as a system crontab and as alice's crontab.
LINE_STATES = {
    "valid": f"0 9 * * * root redis-cli -a {S} FLUSHALL\n",
    "rejected": f"0 9 * * mon-frii root redis-cli -a {S} FLUSHALL\n",
    "file-ignored": f"0 9 * * * root redis-cli -a {S} FLUSHALL\n61 * * * * root /bin/true\n",
    "environment": f"MYSQL_PWD={S}\nDB_PASSWORD = '{S}'\n0 9 * * * root mysqldump shop\n",
    "commented-out": f"# 0 9 * * * root redis-cli -a {S} FLUSHALL\n",
    "commented-rejected": f"#0 9 * * mon-frii root mysql -p{S} shop\n",
    "no-entry": f"redis-cli -a {S} FLUSHALL\n",
    "six-fields": f"0 0 9 * * * root sshpass -p {S} ssh nas uptime\n",
    "macro": f"@daily root mysql -p{S} shop\n",
    "no-final-newline": f"0 9 * * * root sshpass -p {S} ssh nas uptime",
    "user-word": f"* * * * * MYSQL_PWD={S} mysqldump shop\n",
    "percent": f"0 9 * * * root redis-cli -a {S} FLUSHALL%stdin%\n",
    "continued": f"0 9 * * * root /opt/x.sh \\\n  redis-cli -a {S}\n",
}
FORMATS = {"system": ["--system"], "user": ["--user", "alice"]}


def run_verb(
    add: Callable[[Any, Any], None], verb: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")
    add(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
    args = parser.parse_args([verb, *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/timezone").write_text("UTC\n")
    return root


def outputs(
    source: Path, kind: list[str], host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, str]:
    """Every text cronsync prints or writes for ``source``, by where it went."""
    shown: dict[str, str] = {}
    base = [str(source), *kind, "--root", str(host)]
    for extra in ([], ["--json"]):
        _code, shown[f"inventory {extra}"] = run_verb(
            add_inventory_verb, "inventory", [*base, *extra], capsys
        )
        repo = tmp_path / f"repo{len(extra)}"
        secrets = secretledger.secret_store(tmp_path / f"private{len(extra)}/s.toml")
        argv = [*base, "--into", str(repo), "--secrets-file", str(secrets), *extra]
        code, shown[f"import {extra}"] = run_verb(
            add_import_verbs, "import", [*argv, "--include-commented"], capsys
        )
        assert code == 0, shown[f"import {extra}"]
        assert (repo / "MIGRATION.md").is_file()
        for path in sorted(repo.rglob("*")):
            if path.is_file():
                shown[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    return shown


@pytest.mark.parametrize("kind", sorted(FORMATS))
@pytest.mark.parametrize("state", sorted(LINE_STATES))
def test_no_output_shows_a_secret_whatever_the_lines_state(
    state: str, kind: str, host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = secretledger.legacy_input(tmp_path / "crontab")
    source.write_text(LINE_STATES[state])
    shown = outputs(source, FORMATS[kind], host, tmp_path, capsys)
    leaks = [where for where, text in shown.items() if SECRET in text]
    assert not leaks, {where: shown[where] for where in leaks}


def test_inventory_masks_the_line_cron_rejects(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's example: the line is shown (where and why), its password is not."""
    source = secretledger.legacy_input(tmp_path / "redis")
    source.write_text("0 9 * * mon-frii root redis-cli -a p4ssw0rd FLUSHALL\n")
    for extra in ([], ["--json"]):
        code, out = run_verb(
            add_inventory_verb,
            "inventory",
            ["--system", str(source), "--root", str(host), *extra],
            capsys,
        )
        assert code == 1
        assert "p4ssw0rd" not in out
        assert "redis-cli -a *** FLUSHALL" in out
        assert "unknown name 'frii'" in out


def test_import_masks_the_line_cron_rejects_in_migration_md(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = secretledger.legacy_input(tmp_path / "redis")
    source.write_text("0 9 * * mon-frii root redis-cli -a p4ssw0rd FLUSHALL\n")
    repo = tmp_path / "repo"
    argv = ["--system", str(source), "--root", str(host), "--into", str(repo)]
    argv += ["--secrets-file", str(secretledger.secret_store(tmp_path / "private/s.toml"))]
    code, out = run_verb(add_import_verbs, "import", argv, capsys)
    assert code == 0
    migration = (repo / "MIGRATION.md").read_text()
    assert "p4ssw0rd" not in migration + out
    assert "`0 9 * * mon-frii root redis-cli -a *** FLUSHALL`" in migration


USER_FILE_SECRETS = ["devZx19pass", "redisZx20", "sshZx21", "curlZx22"]  # user-inline-secrets


@pytest.mark.parametrize(
    ("name", "kind"),
    [("inline-secrets", ["--user", "alice"]), ("user-inline-secrets", ["--system"])],
)
def test_a_file_read_in_the_wrong_format_shows_no_secret(
    name: str,
    kind: list[str],
    host: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The corpus's system file read as a user crontab (and a user file as a system one):
    the detectors still see each command where it starts in any reading of the line."""
    shown = outputs(DATA / name, kind, host, tmp_path, capsys)
    for value in SECRETS + USER_FILE_SECRETS:
        leaks = [where for where, text in shown.items() if value in text]
        assert not leaks, (value, leaks)
