"""``cronsync import`` on real files: a fake host root built from tests/data/crontabs.

The verb runs in process through ``add_import_verbs`` on a parser of our own. Checked:
what the repository holds, that no secret value of the corpus reaches the repository,
the report, the JSON or the terminal; the round trip (every entry cron runs renders
to the same schedule, user and effective command); imported jobs run for real give
the original's output; and arbitrary crontab text never crashes an import.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronsync.cli.migrate import add_import_verbs
from cronsync.core.errors import UsageError
from cronsync.core.manifest import SourceFile, parse_job
from cronsync.core.model import Defaults, HostContext
from cronsync.core.render import plan_entries
from cronsync.core.schedule import parse_schedule
from cronsync.core.scheduletext import describe
from cronsync.crontab.inventory import CrontabFile, HostFacts, inventory_file
from cronsync.crontab.line import split_percent
from cronsync.migrate.importmodel import ImportOptions
from cronsync.migrate.importplan import plan_import
from cronsync.migrate.jobwriter import parse_origins, render_job
from cronsync.migrate.lines import command_field, entry_body
from cronsync.migrate.movesecrets import SecretsNotStored
from cronsync.migrate.report import import_json, render_migration
from cronsync.repo.gate import check_repository
from cronsync.secretscan.scan import find_secrets, mask_findings
from helpers import secretledger
from helpers.crontabdata import DATA, PASSWD, SECRETS, put
from helpers.motoserver import moto_running

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SYSTEM_FILES = [
    "legacy-etc-crontab", "cron.d-backup", "crlf-blank-line", "tabs-system", "no-final-newline",
    "one-bad-line", "inline-secrets", "commented-out", "prose", "broken-lines", "six-fields",
    "no-command", "missing-user", "cronsync-managed", "cron-tz", "duplicates", "comment-only",
]  # fmt: skip
USER_FILES = ["crontab-l-dump", "crlf-user", "user-quirks", "user-six-fields", "runnable-user"]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A host root: /etc/crontab, cron.d files (cronsync's own too), a user crontab."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/passwd").write_text(PASSWD)
    (host / "etc/timezone").write_text("Europe/Berlin\n")
    put(host / "etc/crontab", "legacy-etc-crontab")
    put(host / "etc/cron.d/backup", "cron.d-backup")
    put(host / "etc/cron.d/secrets", "inline-secrets")
    put(host / "etc/cron.d/cronsync", "cronsync-managed")
    put(host / "etc/cron.d/broken", "one-bad-line")
    put(host / "var/spool/cron/crontabs/batch", "crontab-l-dump", 0o600)
    return host


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")
    add_import_verbs(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def fill_todos(repo: Path) -> None:
    for path in (repo / "jobs").glob("*.toml"):
        text = path.read_text()
        text = text.replace('description = "TODO: ', 'description = "Reviewed: ')
        text = text.replace('owner = "TODO: team or e-mail"', 'owner = "ops@example.com"')
        path.write_text(text)


def every_file(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


# --- the repository ------------------------------------------------------------------


def test_import_of_a_host_writes_a_repository_that_validates(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, secrets = tmp_path / "repo", tmp_path / "private" / "secrets.toml"
    code, out, err = run_cli(
        ["import", "--root", str(root), "--into", str(repo), "--secrets-file", str(secrets)],
        capsys,
    )
    assert code == 0, err
    assert "imported 28 jobs from 5 crontabs" in out
    assert "/etc/cron.d/broken:3: broken: cron rejects this line" in out
    names = sorted(p.stem for p in (repo / "jobs").glob("*.toml"))
    assert len(names) == 28
    assert {"cron-hourly", "cron-daily", "aggregate", "warm-cache", "mail", "pg_dump"} <= set(names)
    config = tomllib.loads((repo / "cronsync.toml").read_text())
    assert config["defaults"] == {"timezone": "Europe/Berlin", "concurrency": "allow"}
    report = check_repository(repo, lint=False)
    todo = {(p.file, p.field) for p in report.errors}
    assert todo == {(f"jobs/{n}.toml", f) for n in names for f in ("description", "owner")}
    fill_todos(repo)
    report = check_repository(repo, lint=False)
    assert [p.format() for p in report.problems] == []
    migration = (repo / "MIGRATION.md").read_text()
    assert "## Checklist" in migration and "## Not imported" in migration
    assert "`/etc/cron.d/broken:3` `61 * * * * root /opt/jobs/too-late.sh`" in migration
    assert "`/etc/cron.d/cronsync` — cronsync's own file" in migration
    assert not (repo / "jobs" / "nightly-aggregate.toml").exists()  # the managed file


def test_cron_semantics_in_the_job_files(root: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess_free_import(root, repo, tmp_path / "s.toml")
    hourly = tomllib.loads((repo / "jobs/cron-hourly.toml").read_text())
    assert hourly["schedule"] == "17 * * * *" and hourly["user"] == "root"
    assert hourly["shell"] == "cd / && run-parts --report /etc/cron.hourly"
    assert hourly["workdir"] == "/root"
    assert hourly["env"] == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin",
        "REPORT_TITLE": "Nightly batch",
        "RAILS_ENV": "production",
    }
    assert hourly["secrets"] == {"DB_PASSWORD": "imported/cron-hourly-DB_PASSWORD"}
    aggregate = tomllib.loads((repo / "jobs/aggregate.toml").read_text())
    assert aggregate["schedule"] == "30 3 * * mon-fri"
    assert aggregate["secrets"] == hourly["secrets"]  # one value, stored once
    mail = tomllib.loads((repo / "jobs/mail.toml").read_text())
    assert mail["user"] == "batch" and mail["workdir"] == "/home/batch"
    assert mail["shell"] == (
        "printf '%s\\n' 'Good morning,' 'the report is at /srv/report-%Y.html' | "
        'mail -s "Daily report" team@example.com'
    )
    assert "MAILTO" not in mail.get("env", {})
    ssh = tomllib.loads((repo / "jobs/ssh.toml").read_text())
    assert ssh["command"] == ["ssh", "-p", "2222", "backup@nas", "uptime"]
    sync = (repo / "jobs/sync.toml").read_text()
    assert '--password \\"${SYNC_PASSWORD}\\" --password-file /etc/sync.pw' in sync
    migration = (repo / "MIGRATION.md").read_text()
    assert "MAILTO dropped: cron's output was mailed to ops@example.com" in migration
    assert "its output went by mail to batch-owners@example.com" in migration


def subprocess_free_import(root: Path, repo: Path, secrets: Path, *extra: str) -> str:
    """Run the verb in process without capsys (for tests that only need the files)."""
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")
    add_import_verbs(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
    argv = ["import", "--root", str(root), "--into", str(repo), "--secrets-file", str(secrets)]
    args = parser.parse_args([*argv, *extra])
    assert args.func(args) == 0
    return str(repo)


def test_no_secret_value_anywhere_but_the_secrets_file(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    secrets = secretledger.secret_store(tmp_path / "secrets.toml")  # made 0644 below
    argv = ["import", "--root", str(root), "--into", str(repo), "--secrets-file", str(secrets)]
    code, out, err = run_cli([*argv, "--json", "--include-commented"], capsys)
    assert code == 0
    assert_no_secret(out + err)
    for name, data in every_file(repo).items():
        assert_no_secret(data.decode()), name
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    stored = tomllib.loads(secrets.read_text())
    assert sorted(set(SECRETS) - set(stored.values())) == []
    document = json.loads(out)
    assert document["secrets"]["count"] == len(stored)
    assert document["secrets"]["references"] == sorted(stored)
    references = {s["reference"] for job in document["jobs"] for s in job["secrets"]}
    assert references == set(stored)
    kinds = {s["kind"] for job in document["jobs"] for s in job["secrets"]}
    assert kinds == {
        "env_assignment",
        "password_flag",
        "token_flag",
        "user_password",
        "url_credentials",
        "url_parameter",
        "aws_access_key_id",
        "auth_header",
    }  # fmt: skip (the AWS secret key of the corpus is an env line: env_assignment)


def test_refusals_and_a_safe_rerun(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    secrets = secretledger.secret_store(tmp_path / "secrets.toml")  # made 0644 below
    base = ["import", "--root", str(root), "--into", str(repo)]
    assert run_cli([*base, "--secrets-file", str(secrets)], capsys)[0] == 0
    first = every_file(repo)
    with pytest.raises(UsageError, match="is not empty: import into a new or empty"):
        run_cli([*base, "--secrets-file", str(secrets)], capsys)
    assert every_file(repo) == first
    shutil.rmtree(repo / "jobs")
    inside = repo / "secrets.toml"
    with pytest.raises(UsageError, match="would be inside the repository"):
        run_cli([*base, "--secrets-file", str(inside)], capsys)
    assert run_cli([*base, "--secrets-file", str(secrets)], capsys)[0] == 0
    assert every_file(repo) == first
    secrets.chmod(0o644)
    shutil.rmtree(repo / "jobs")
    with pytest.raises(UsageError, match="readable by others"):
        run_cli([*base, "--secrets-file", str(secrets)], capsys)
    assert not (repo / "jobs").exists()


def test_the_default_secrets_file_is_in_the_working_directory(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli(["import", "--root", str(root), "--into", "repo"], capsys)[0] == 0
    assert stat.S_IMODE((tmp_path / "cronsync-import-secrets.toml").stat().st_mode) == 0o600
    monkeypatch.chdir(tmp_path / "repo")
    shutil.rmtree(tmp_path / "repo/jobs")
    with pytest.raises(UsageError, match="would be inside the repository"):
        run_cli(["import", "--root", str(root), "--into", "."], capsys)


def test_one_secrets_file_per_user(root: Path, tmp_path: Path) -> None:
    template = tmp_path / "secrets.d" / "{user}.toml"
    subprocess_free_import(root, tmp_path / "repo", template)
    files = sorted(p.name for p in (tmp_path / "secrets.d").iterdir())
    assert files == ["batch.toml", "postgres.toml", "root.toml"]
    batch = tomllib.loads((tmp_path / "secrets.d/batch.toml").read_text())
    assert list(batch) == ["imported/cron-hourly-DB_PASSWORD"]  # aggregate (batch) reads it


def test_commented_out_jobs_can_be_imported_disabled(root: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess_free_import(root, repo, tmp_path / "s.toml", "--include-commented")
    old = tomllib.loads((repo / "jobs/old-cleanup.toml").read_text())
    assert old["enabled"] is False
    assert old["reason"] == "commented out in /etc/crontab:28 before the migration"
    fill_todos(repo)
    report = check_repository(repo, lint=False)
    assert report.ok, [p.format() for p in report.problems]


def test_copy_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = tmp_path / "host"
    bin_dir = host / "usr/local/bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "backup-db.sh").write_text('#!/bin/sh\necho backing up "$@"\n')
    (bin_dir / "backup-db.sh").chmod(0o775)
    (bin_dir / "tool").write_bytes(b"\x7fELF binary")
    (bin_dir / "tool").chmod(0o755)
    (host / "etc/cron.d").mkdir(parents=True)
    (host / "etc/cron.d/jobs").write_text(
        "0 2 * * * root /usr/local/bin/backup-db.sh --full\n"
        "0 3 * * * root /usr/local/bin/tool\n"
        "0 4 * * * root /usr/local/bin/missing.sh\n"
        "0 5 * * * root /usr/local/bin/backup-db.sh > /tmp/log\n"
    )
    repo = tmp_path / "repo"
    argv = ["import", "--root", str(host), "--into", str(repo), "--copy-scripts"]
    code, out, _err = run_cli(argv, capsys)
    assert code == 0, out
    job = tomllib.loads((repo / "jobs/backup-db.toml").read_text())
    assert job["command"] == ["scripts/backup-db.sh", "--full"]
    copied = repo / "scripts/backup-db.sh"
    assert copied.read_bytes() == (bin_dir / "backup-db.sh").read_bytes()
    assert stat.S_IMODE(copied.stat().st_mode) == 0o755
    assert tomllib.loads((repo / "jobs/tool.toml").read_text())["shell"] == "/usr/local/bin/tool"
    migration = (repo / "MIGRATION.md").read_text()
    assert "not a script (no #! line)" in migration and "cannot read it here" in migration
    shell_job = tomllib.loads((repo / "jobs/backup-db-2.toml").read_text())
    assert shell_job["shell"] == "/usr/local/bin/backup-db.sh > /tmp/log"
    fill_todos(repo)
    assert check_repository(repo, lint=False).ok


def test_copy_scripts_copies_only_what_the_jobs_user_could_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """import runs as root: a user's crontab naming root's files must not copy them."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nbatch:x:54321:54321::/:/bin/sh\n")
    private = host / "root"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    (private / "secret.sh").write_text("#!/bin/sh\necho root-only-content\n")
    app = host / "opt/app"
    app.mkdir(parents=True)
    (app / "run.sh").write_text("#!/bin/sh\necho shared\n")
    (app / "run.sh").chmod(0o755)
    (app / "mine.sh").write_text("#!/bin/sh\necho owner-only-content\n")
    (app / "mine.sh").chmod(0o700)  # owned by whoever runs the test, not uid 54321
    (app / "link.sh").symlink_to("../../root/secret.sh")  # its real path is what counts
    (app / "escape.sh").symlink_to(tmp_path / "outside.sh")
    (tmp_path / "outside.sh").write_text("#!/bin/sh\necho outside\n")
    spool = host / "var/spool/cron/crontabs"
    spool.mkdir(parents=True)
    (spool / "batch").write_text(
        "0 1 * * * /opt/app/run.sh\n0 2 * * * /root/secret.sh\n0 3 * * * /opt/app/mine.sh\n"
        "0 4 * * * /opt/app/link.sh\n0 5 * * * /opt/app/escape.sh\n"
    )
    (spool / "batch").chmod(0o600)  # as crontab(1) leaves it: cron reads no other mode
    (host / "etc/cron.d").mkdir()
    (host / "etc/cron.d/rootjobs").write_text("0 6 * * * root /root/secret.sh\n")
    repo = tmp_path / "repo"
    argv = ["import", "--root", str(host), "--into", str(repo), "--copy-scripts"]
    code, out, _err = run_cli(argv, capsys)
    assert code == 0, out
    copied = {p.name: p.read_text() for p in (repo / "scripts").iterdir()}
    # the shared script for batch, root's script only for root's own job
    assert sorted(copied.values()) == sorted(
        ["#!/bin/sh\necho shared\n", "#!/bin/sh\necho root-only-content\n"]
    )
    root_job = next(
        tomllib.loads(p.read_text())
        for p in (repo / "jobs").iterdir()
        if tomllib.loads(p.read_text())["user"] == "root"
    )
    assert root_job["command"][0].startswith("scripts/")
    migration = (repo / "MIGRATION.md").read_text()
    assert migration.count("its user cannot read it (folder /root is mode 0700") == 2
    assert "its user cannot read it (file /opt/app/mine.sh is mode 0700" in migration
    assert "its real path leads out of the host root" in migration
    for path in repo.rglob("*"):
        if path.is_file():
            assert "owner-only-content" not in path.read_text(errors="replace")


def test_sources_need_a_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = put(tmp_path / "batch.cron", "crontab-l-dump")
    repo = tmp_path / "repo"
    with pytest.raises(UsageError, match=r"--system.*--user USER"):
        run_cli(["import", str(dump), "--root", str(tmp_path), "--into", str(repo)], capsys)
    argv = ["import", str(dump), "--user", "batch", "--root", str(tmp_path), "--into", str(repo)]
    code, out, _err = run_cli([*argv, "--secrets-file", str(tmp_path / "s.toml")], capsys)
    assert code == 0 and "imported 4 jobs from 1 crontabs" in out
    job = (repo / "jobs/purge.toml").read_text()
    assert parse_origins(job)[0].source == "/batch.cron"


# --- the round trip ------------------------------------------------------------------

ZONE = "Asia/Tokyo"
REFERENCE = re.compile(r"""'"\$(\w+)"'|"\$(\w+)"|\$\{(\w+)\}""")


def schedule_sets(text: str) -> tuple[object, ...]:
    s = parse_schedule(text)
    return (s.minutes, s.hours, s.days_of_month, s.months, s.days_of_week, s.reboot,
            s.dom_restricted, s.dow_restricted)  # fmt: skip


def import_file(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/timezone").write_text(ZONE + "\n")
    source = put(host / "crontabs" / name, name)
    kind = ["--system"] if name in SYSTEM_FILES else ["--user", "batch"]
    repo = tmp_path / "repo"
    argv = ["import", str(source), *kind, "--root", str(host), "--into", str(repo)]
    code, _out, err = run_cli([*argv, "--secrets-file", str(tmp_path / "s.toml")], capsys)
    assert code == 0, err
    return repo


def expected_forms(raw: str, secret_envs: set[str]) -> tuple[str, Optional[str]]:
    """The original command as the shell gets it (secrets masked), and its stdin."""
    masked = mask_findings(raw, find_secrets(raw)) if secret_envs else raw
    return split_percent(masked)


def unreference(text: str, envs: set[str]) -> str:
    def swap(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return "***" if name in envs else match[0]

    return REFERENCE.sub(swap, text)


def check_command(job: Any, raw: str, env_lines: set[str]) -> None:
    secret_envs = {ref.env for ref in job.secrets} - env_lines  # those the command reads
    text, stdin = expected_forms(raw, secret_envs)
    argv = list(job.command)
    if job.shell is None and argv[:2] != ["bash", "-c"]:
        assert not stdin and not secret_envs
        assert argv == shlex.split(text)
        assert shlex.split(shlex.join(argv)) == shlex.split(text)
        words = subprocess.run(
            ["/bin/sh", "-c", f"set -- {text}; printf '<%s>\\n' \"$@\""],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        assert words == "".join(f"<{word}>\n" for word in argv)
        return
    shell = unreference(job.shell if job.shell is not None else argv[2], secret_envs)
    if not stdin:
        assert shell == text
        return
    feed = "printf '%s\\n' " + " ".join(shlex.quote(x) for x in stdin[:-1].split("\n")) + " | "
    grouped = "{ " + text + ("; }" if not text.rstrip().endswith((";", "&")) else " }")
    assert shell in (feed + text, feed + grouped, feed + f"sh -c {shlex.quote(text)}")


@pytest.mark.parametrize("name", SYSTEM_FILES + USER_FILES)
def test_round_trip(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = import_file(name, tmp_path, capsys)
    fill_todos(repo)
    report = check_repository(repo, lint=False)
    assert report.ok, [p.format() for p in report.problems]
    entries, problems = plan_entries(report.repo, HostContext("h", timezone=ZONE), NOW)
    assert problems == []
    planned = {entry.job: entry for entry in entries}
    jobs = {job.name: job for job in report.repo.jobs}
    by_origin = {
        (o.source, o.line): jobs[path.stem]
        for path in (repo / "jobs").glob("*.toml")
        for o in parse_origins(path.read_text())
    }
    text = (DATA / name).read_bytes().decode()
    system = name in SYSTEM_FILES
    crontab = CrontabFile(f"/crontabs/{name}", text, system, None if system else "batch")
    inventory = inventory_file(crontab, HostFacts(NOW, ZoneInfo(ZONE)))
    running = [e for e in inventory.entries if e.runs and not inventory.managed]
    assert len(by_origin) == len(running)
    lines = text.split("\n")
    for entry in running:
        job = by_origin[(entry.source, entry.line)]
        assert job.user == entry.user
        times = planned[job.name].times
        assert len(times) == 1
        assert parse_schedule(times[0]).reboot or times[0].count(" ") == 4
        assert schedule_sets(times[0]) == schedule_sets(job.schedule)
        assert describe(parse_schedule(job.schedule)) == entry.description
        quirks = " ".join(entry.problems)
        if "cron reads the field" not in quirks and "reversed" not in quirks:
            assert schedule_sets(job.schedule) == schedule_sets(entry.schedule)
        raw = command_field(entry_body(lines[entry.line - 1], False), system).removesuffix("\r")
        check_command(job, raw, {k for k, _ in entry.env})
        expected = {k for k, _ in entry.env} - {"MAILTO"}
        expected -= {"SHELL"} if dict(entry.env).get("SHELL", "/bin/sh") == "/bin/sh" else set()
        names = set(job.env) | {ref.env for ref in job.secrets}
        assert expected <= names
        for key, value in job.env.items():
            assert dict(entry.env)[key] == value


def test_round_trip_corpus_covers_the_cases() -> None:
    texts = {name: (DATA / name).read_bytes() for name in SYSTEM_FILES + USER_FILES}
    assert any(b"\r\n" in t for t in texts.values())
    assert any(b"\t" in t for t in texts.values())
    assert any(not t.endswith(b"\n") for t in texts.values())
    assert texts["crontab-l-dump"].startswith(b"# DO NOT EDIT THIS FILE")
    assert all(line.startswith(b"#") for line in texts["comment-only"].splitlines())


# --- running imported jobs for real --------------------------------------------------


def run_original(raw: str, env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    text, stdin = split_percent(raw)
    return subprocess.run(
        ["/bin/sh", "-c", text], input=stdin or "", capture_output=True, text=True,
        env=env, cwd=home, timeout=30,
    )  # fmt: skip


def run_imported(job: Any, env: dict[str, str], secrets: dict[str, str], home: Path) -> Any:
    full = {**env, **job.env, **{ref.env: secrets[ref.name] for ref in job.secrets}}
    argv = ["/bin/sh", "-c", job.shell] if job.shell is not None else list(job.command)
    return subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=full,
        cwd=job.workdir or home, timeout=30,
    )  # fmt: skip


def test_imported_jobs_behave_like_the_originals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = import_file("runnable-user", tmp_path, capsys)
    fill_todos(repo)
    report = check_repository(repo, lint=False)
    assert report.ok, [p.format() for p in report.problems]
    secrets = tomllib.loads((tmp_path / "s.toml").read_text())
    home = tmp_path / "home"
    home.mkdir()
    base = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LOGNAME": "batch", "SHELL": "/bin/sh"}
    text = (DATA / "runnable-user").read_text()
    inventory = inventory_file(
        CrontabFile("/crontabs/runnable-user", text, False, "batch"),
        HostFacts(NOW, ZoneInfo(ZONE)),
    )
    jobs = {job.name: job for job in report.repo.jobs}
    origins = {
        o.line: jobs[p.stem]
        for p in (repo / "jobs").glob("*.toml")
        for o in parse_origins(p.read_text())
    }
    lines = text.split("\n")
    compared = 0
    for entry in inventory.entries:
        raw = command_field(entry_body(lines[entry.line - 1], False), False)
        env = {**base, **dict(entry.env)}
        original = run_original(raw, env, home)
        imported = run_imported(origins[entry.line], base, secrets, home)
        assert (imported.stdout, imported.returncode) == (original.stdout, original.returncode), raw
        assert original.stdout
        compared += 1
    assert compared == 9
    forms = {job.name: ("shell" if job.shell else "argv") for job in jobs.values()}
    assert "argv" in forms.values() and "shell" in forms.values()


# --- AWS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_running() as url:
        yield url


def test_create_secrets_in_secrets_manager(
    root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
) -> None:
    import boto3

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[repo]\nurl = "/nowhere"\n[paths]\nroot = "{root}"\n'
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_endpoint}"\n'
    )
    argv = ["import", "--config", str(config), "--into", str(tmp_path / "repo")]
    code, out, err = run_cli([*argv, "--create-secrets", "--secret-prefix", "host-1"], capsys)
    assert code == 0, err
    assert "stored in Secrets Manager under host-1/" in out
    assert_no_secret(out + err)
    assert not (tmp_path / "cronsync-import-secrets.toml").exists()
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    names = {s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"].startswith("host-1/")}
    values = {sm.get_secret_value(SecretId=n)["SecretString"] for n in names}
    assert set(SECRETS) <= values
    argv[-1] = str(tmp_path / "again")  # a re-run: the same values are left as they are
    assert run_cli([*argv, "--create-secrets", "--secret-prefix", "host-1"], capsys)[0] == 0
    sm.put_secret_value(SecretId="host-1/cron-hourly-DB_PASSWORD", SecretString="rotated")
    argv[-1] = str(tmp_path / "third")
    with pytest.raises(SecretsNotStored, match="host-1/cron-hourly-DB_PASSWORD with another"):
        run_cli([*argv, "--create-secrets", "--secret-prefix", "host-1"], capsys)
    value = sm.get_secret_value(SecretId="host-1/cron-hourly-DB_PASSWORD")["SecretString"]
    assert value == "rotated"  # never overwritten
    assert not (tmp_path / "third").exists()
    migration = (tmp_path / "repo/MIGRATION.md").read_text()
    assert "created in Secrets Manager (host-1/)" in migration
    assert_no_secret(migration)


# --- anything goes -------------------------------------------------------------------

LINE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["MAILTO=x", "SHELL=/bin/bash", "SHELL=/bin/zsh", "PW=secret1", "A='q r '", "#", ""]
    ),
    st.builds(
        lambda when, user, cmd: f"{when} {user} {cmd}",
        st.sampled_from(["* * * * *", "@daily", "0 0 1 * sat-sun", "1-5-7 * * * *", "61 * * * *"]),
        st.sampled_from(["root", "", "batch"]),
        st.text(max_size=40),
    ),
)


@given(st.lists(LINE, max_size=12), st.booleans(), st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_crontab_text_never_crashes_an_import(
    lines: list[str], system: bool, commented: bool
) -> None:
    text = "\n".join(lines) + "\n"
    crontab = CrontabFile("/etc/cron.d/x", text, system, None if system else "batch")
    report = inventory_file(crontab, HostFacts(NOW, ZoneInfo("UTC")))
    plan = plan_import(
        [(crontab, report)], "UTC", ImportOptions(include_commented=commented), lambda _: None
    )
    render_migration(plan, "file:/x")
    json.dumps(import_json(plan, "repo", [], None))
    for job in plan.jobs:
        text = render_job(job.model)
        parsed, problems = parse_job(SourceFile(f"jobs/{job.model.name}.toml", text), Defaults())
        assert problems == [] and parsed is not None, text
        for secret in job.secrets:
            assert len(secret.value) < 4 or secret.value not in text


def test_an_unknown_zone_is_a_usage_error(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "etc/timezone").write_text("Mars/Olympus\n")
    with pytest.raises(UsageError, match="time zone 'Mars/Olympus' is unknown"):
        run_cli(["import", "--root", str(root), "--into", str(tmp_path / "r")], capsys)
    assert not os.path.exists(tmp_path / "r")


def test_a_secret_value_is_masked_wherever_it_shows(tmp_path: Path) -> None:
    text = (
        "DB_PASSWORD=EnvLine55\n"
        "0 1 * * * root --password=Cross77 # a flag as the program: seen in another reading\n"
        "0 2 * * * root mysql --password=Cross77 shop\n"
        "0 3 * * * root echo EnvLine55 | tee /tmp/x\n"
        "# 0 4 * * * root backup --token=Cross77\n"
        "0 5 * * * root printf Cross77 # no detector sees it here\n"
    )
    crontab = CrontabFile("/etc/cron.d/x", text, True)
    report = inventory_file(crontab, HostFacts(NOW, ZoneInfo("UTC")))
    plan = plan_import([(crontab, report)], "UTC", ImportOptions(), lambda _: None)
    assert [job.model.origins[0].line for job in plan.jobs] == [2, 3]
    assert sorted(s.env for s in plan.jobs[0].secrets) == ["DB_PASSWORD", "ROOT_PASSWORD"]
    unsupported = {s.line: s for s in plan.skipped if s.category == "unsupported"}
    assert sorted(unsupported) == [4, 6]
    assert unsupported[6].text == "0 5 * * * root printf *** # no detector sees it here"
    outputs = [render_migration(plan, "file:/x"), json.dumps(import_json(plan, "r", [], None))]
    outputs += [render_job(job.model) for job in plan.jobs]
    for output in outputs:
        assert "Cross77" not in output and "EnvLine55" not in output


# --- what cron runs but the host does not expect ---------------------------------------

BROKEN_BY_PERCENT = [5, 6, 7, 8, 9]  # lines of percent-in-constructs the % cut breaks


def jobs_by_line(repo: Path) -> dict[int, Path]:
    return {
        origin.line: path
        for path in (repo / "jobs").glob("*.toml")
        for origin in parse_origins(path.read_text())
    }


def test_percent_cuts_import_as_cron_read_them_and_are_left_for_a_person(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "percent-in-constructs"
    repo = import_file(name, tmp_path, capsys)
    fill_todos(repo)
    report = check_repository(repo, lint=False)
    jobs = {job.name: job for job in report.repo.jobs}
    text = (DATA / name).read_text()
    lines = text.split("\n")
    crontab = CrontabFile(f"/crontabs/{name}", text, False, "batch")
    inventory = inventory_file(crontab, HostFacts(NOW, ZoneInfo(ZONE)))
    files = jobs_by_line(repo)
    assert sorted(files) == [e.line for e in inventory.entries if e.runs]
    for entry in inventory.entries:  # the round trip: each job runs what cron ran
        job = jobs[files[entry.line].stem]
        raw = command_field(entry_body(lines[entry.line - 1], False), False)
        check_command(job, raw, {k for k, _ in entry.env})
        assert job.env["PATH"] == "$PATH:/opt/bin"  # kept literally, as cron does
    # /bin/sh cannot parse what cron ran: validate refuses exactly those jobs
    refused = {p.file for p in report.problems}
    assert refused == {f"jobs/{files[n].stem}.toml" for n in BROKEN_BY_PERCENT}
    assert all("cannot parse" in p.message for p in report.problems)
    migration = (repo / "MIGRATION.md").read_text()
    for line in BROKEN_BY_PERCENT:
        section = migration.split(f"— `jobs/{files[line].stem}.toml`")[1].split("\n### ")[0]
        assert "the original line never worked as written: an unescaped % cut" in section
        assert "if a literal % was meant (\\% in a crontab), the line to run is" in section
        assert "PATH=$PATH:/opt/bin: cron does not expand $" in section
    assert migration.count("never worked as written") == len(BROKEN_BY_PERCENT)
    assert "line to run is `tar czf /backup/www-$(date +%F).tgz /var/www`" in migration
    assert "line to run is `printf '%s\\n' 'see /srv/report' | mail -s \"Report" in migration
    assert "()" not in migration  # every schedule is described
    assert "- Schedule: `*/15 * * * *` (every 15 minutes)" in migration
    names = {line: path.stem for line, path in files.items()}
    assert [names[n] for n in (5, 6, 12, 13, 14, 15, 16, 17, 18)] == [
        "tar", "report", "run-parts-15min", "rsnapshot", "rsnapshot-daily", "job", "sync",
        "artisan-schedule-run", "cleanup",
    ]  # fmt: skip


def test_shell_keeps_the_interpreter_cron_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = import_file("shell-path", tmp_path, capsys)
    files = jobs_by_line(repo)
    jobs = {n: tomllib.loads(files[n].read_text()) for n in sorted(files)}
    # an absolute interpreter is exec'd by a shell line (validate wants no absolute
    # program in an argv): the same program runs, with the same arguments
    assert jobs[3]["shell"] == "exec /usr/local/bin/bash -c '[[ -d /srv/app ]] && echo one'"
    assert jobs[5]["command"] == ["bash", "-c", "[[ -d /srv/app ]] && echo two"]  # same bash
    assert jobs[7]["shell"] == "exec /bin/bash -c '[[ -d /srv/app ]] && echo three'"
    problems = check_repository(repo).problems
    assert not [p for p in problems if p.field in ("command", "shell")], problems


def test_a_line_not_in_utf8_is_left_for_a_person(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert b"r\xe9sum\xe9" in (DATA / "latin1-line").read_bytes()
    repo = import_file("latin1-line", tmp_path, capsys)
    files = jobs_by_line(repo)
    assert "r\ufffdsum\ufffd" in files[2].read_text()
    migration = (repo / "MIGRATION.md").read_text()
    first, second = (migration.split(f"`jobs/{files[n].stem}.toml`")[1] for n in (2, 3))
    note = "the line is not valid UTF-8: its undecodable bytes were replaced by U+FFFD"
    assert note in first.split("\n### ")[0]
    assert note not in second
