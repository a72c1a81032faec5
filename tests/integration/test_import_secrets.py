"""``cronsync import`` against what real-world crontabs hold: secrets of every shape move
out (and the jobs still get them), look-alikes stay as written, missing sources are
usage errors, and a secret name already holding another value is never overwritten.

The verbs run in process (``add_import_verbs`` / ``add_inventory_verb`` on a parser of
our own); imported jobs are run for real and compared with the original lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronsync.cli.inventory import add_inventory_verb
from cronsync.cli.migrate import add_import_verbs
from cronsync.core.errors import EXIT_INSTALL, EXIT_USAGE, UsageError
from cronsync.crontab.line import split_percent
from cronsync.migrate.movesecrets import SecretsNotStored
from cronsync.repo.gate import check_repository
from helpers import secretledger
from helpers.motoserver import moto_running

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PASSWD = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/bin/sh\n"

# Each value must end up in the secrets file and nowhere else.
PROBE_SECRETS = {
    "stripe": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "mailgun": "key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
    "dsn": "https://e2b7c1d9f0a34c56@o12345.ingest.sentry.io/1",
    "hook_env": "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/Q1w2E3r4T5y6U7i8O9p0",
    "hook_url_env": "https://hooks.slack.com/services/T0CCCCCCC/B0DDDDDDD/Z9x8C7v6B5n4M3a2S1d0",
    "slack_path": "T000/B000/XXXXXXXX",
    "telegram": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "discord": "abcDEFghiJKLmnoPQRstuVWXyz0123456789",
    "form_token": "tokval1234",
    "form_api_key": "apikeyval99",
    "form_password": "formpw777",
    "cron_key": "cronkeyval55",
    "sig": "c2lnbmF0dXJl",
    "stripe_arg": "sk_test_abcdefghijklmnop",
    "slack_token": "xoxb-123-456-abcdefgh",
    "gitlab": "glpat-abcdefghij0123456789",
    "json": "jsonkey4242",
}
S = PROBE_SECRETS
PROBE = f"""\
STRIPE_KEY={S["stripe"]}
MAILGUN_KEY={S["mailgun"]}
SENTRY_DSN={S["dsn"]}
SLACK_WEBHOOK={S["hook_env"]}
SLACK_WEBHOOK_URL={S["hook_url_env"]}
0 1 * * * echo "$STRIPE_KEY" "$MAILGUN_KEY" "$SENTRY_DSN" "$SLACK_WEBHOOK" "$SLACK_WEBHOOK_URL"
0 2 * * * curl -X POST -d 'x' https://hooks.slack.com/services/{S["slack_path"]}
0 3 * * * curl -s "https://api.telegram.org/bot{S["telegram"]}/sendMessage?chat_id=1&text=done"
0 4 * * * curl -d '{{}}' https://discord.com/api/webhooks/123456789012345678/{S["discord"]}
0 5 * * * curl -d "token={S["form_token"]}" --data "api_key={S["form_api_key"]}" -F password={S["form_password"]} https://e.example/x
0 6 * * * curl -s "https://example.com/cron.php?cron_key={S["cron_key"]}&sig={S["sig"]}"
0 7 * * * echo {S["stripe_arg"]} "{S["slack_token"]}" '{S["gitlab"]}'
0 8 * * * curl -d '{{"api_key": "{S["json"]}", "n": 1}}' https://e.example/j
"""  # noqa: E501 (crontab lines are long)

# Ordinary commands that look a bit like secrets: imported exactly as written.
LOOK_ALIKES = """\
SSH_KEY=/root/.ssh/id_rsa
KEY_FILE=/etc/app/signing.key
PUBLIC_KEY=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc ops@example.com
STATUS_URL=https://status.example.com/api/v2
0 1 * * * rsync -e "ssh -i $SSH_KEY" -a /srv/ backup@nas:/b/
0 2 * * * curl -fsS -m 10 --retry 5 -o /dev/null https://hc-ping.com/eb095278-f28d-448d-87fb-7b75c171a6aa
0 3 * * * curl -s "https://example.com/search?q=cron&keyword=x&author=bob&token_type=bearer"
0 4 * * * curl -F 'file=@/var/backups/db.tar.gz' -d @/etc/payload.json https://e.example/up
0 5 * * * wget -q https://example.com/download/keys/release.asc -O /tmp/release.asc
0 6 * * * SORT_KEY=created_at GPG_KEY_ID=ABCDEF0123456789 /opt/report.sh
0 7 * * * curl -X POST https://example.com/webhooks/deployment-notifications
0 8 * * * php /var/www/cron.php --key-file=/etc/app.key
"""


def run_import(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")
    add_import_verbs(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
    args = parser.parse_args(["import", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out + err


def run_inventory(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    parser = argparse.ArgumentParser(prog="cronsync")
    verbs = parser.add_subparsers(dest="verb")
    add_inventory_verb(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
    args = parser.parse_args(["inventory", *argv])
    args.func(args)
    out, err = capsys.readouterr()
    return out + err


def every_file(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fill_todos(repo: Path) -> None:
    for path in (repo / "jobs").glob("*.toml"):
        text = path.read_text().replace('description = "TODO: ', 'description = "Reviewed: ')
        path.write_text(text.replace('owner = "TODO: team or e-mail"', 'owner = "ops@x"'))


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host root with a user database and a zone, no crontabs yet."""
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/timezone").write_text("UTC\n")
    return root


def import_user_file(
    text: str, host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[Path, Path, str]:
    source = secretledger.legacy_input(tmp_path / "www-data.cron")
    source.write_text(text)
    repo, secrets = tmp_path / "repo", tmp_path / "private/s.toml"
    argv = [str(source), "--user", "www-data", "--root", str(host), "--into", str(repo)]
    code, out = run_import([*argv, "--secrets-file", str(secrets), *extra], capsys)
    assert code == 0, out
    return repo, secrets, out


# --- item 1: every shape moves out, and the jobs still get the values -----------------


def test_probe_secrets_reach_only_the_secrets_file(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, secrets, out = import_user_file(PROBE, host, tmp_path, capsys, "--json")
    inventory = run_inventory(
        ["--root", str(host), "--user", "www-data", "--json", str(tmp_path / "www-data.cron")],
        capsys,
    )
    files = every_file(repo)
    assert "jobs/curl.toml" in "\n".join(files)
    for key, value in PROBE_SECRETS.items():
        assert value not in out, key
        assert value not in inventory, key
        for name, data in files.items():
            assert value.encode() not in data, (key, name)
    stored = set(tomllib.loads(secrets.read_text()).values())
    assert set(PROBE_SECRETS.values()) <= stored
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    kinds = {s["kind"] for job in json.loads(out)["jobs"] for s in job["secrets"]}
    assert {"env_assignment", "webhook_url", "form_field", "url_parameter", "known_token"} <= kinds
    migration = (repo / "MIGRATION.md").read_text()
    assert "https://hooks.slack.com/services/***" in migration  # shows what it calls


def fake_curl(folder: Path) -> Path:
    """A ``curl`` that prints its arguments instead of calling anything."""
    folder.mkdir(parents=True, exist_ok=True)
    curl = folder / "curl"
    curl.write_text("#!/bin/sh\nprintf '<%s>' \"$@\"\n")
    curl.chmod(0o755)
    return folder


def test_imported_probe_jobs_give_the_programs_the_same_arguments(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, secrets, _out = import_user_file(PROBE, host, tmp_path, capsys)
    fill_todos(repo)
    report = check_repository(repo, lint=False)
    assert report.ok, [p.format() for p in report.problems]
    values = tomllib.loads(secrets.read_text())
    path = f"{fake_curl(tmp_path / 'bin')}:/usr/bin:/bin"
    home = tmp_path / "home"
    home.mkdir()
    env_lines = dict(line.split("=", 1) for line in PROBE.splitlines() if "=" in line[:20])
    jobs = {o: job for job in report.repo.jobs for o in _origin_lines(repo, job.name)}
    compared = 0
    for number, line in enumerate(PROBE.splitlines(), 1):
        if not line[0].isdigit():
            continue
        command, _stdin = split_percent(line.split(" ", 5)[5])
        base = {"PATH": path, "HOME": str(home)}
        original = subprocess.run(
            ["/bin/sh", "-c", command], env={**base, **env_lines}, capture_output=True,
            text=True, cwd=home, check=True, timeout=120,
        ).stdout  # fmt: skip
        job = jobs[number]
        assert job.secrets, line
        full = {**base, **job.env, **{ref.env: values[ref.name] for ref in job.secrets}}
        argv = ["/bin/sh", "-c", job.shell] if job.shell is not None else list(job.command)
        imported = subprocess.run(
            argv, env=full, capture_output=True, text=True, cwd=home, check=True, timeout=120
        ).stdout
        assert imported == original, line
        assert any(value in original for value in PROBE_SECRETS.values()), line
        compared += 1
    assert compared == 8


def _origin_lines(repo: Path, name: str) -> list[int]:
    from cronsync.migrate.jobwriter import parse_origins

    return [o.line for o in parse_origins((repo / "jobs" / f"{name}.toml").read_text())]


def test_look_alikes_are_imported_exactly_as_written(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, secrets, out = import_user_file(LOOK_ALIKES, host, tmp_path, capsys)
    assert "secrets:" not in out and not secrets.exists()
    fill_todos(repo)
    report = check_repository(repo, lint=False)
    assert report.ok, [p.format() for p in report.problems]
    lines = [line for line in LOOK_ALIKES.splitlines() if line[0].isdigit()]
    jobs = {o: job for job in report.repo.jobs for o in _origin_lines(repo, job.name)}
    assert len(jobs) == len(lines)
    for number, line in enumerate(LOOK_ALIKES.splitlines(), 1):
        if not line[0].isdigit():
            continue
        job = jobs[number]
        command = line.split(" ", 5)[5]
        assert not job.secrets, line
        written = job.shell if job.shell is not None else shlex.join(job.command)
        assert shlex.split(written) == shlex.split(command), line
        assert job.env["SSH_KEY"] == "/root/.ssh/id_rsa"
        assert job.env["KEY_FILE"] == "/etc/app/signing.key"
        assert job.env["PUBLIC_KEY"].startswith("ssh-ed25519 AAAA")
        assert job.env["STATUS_URL"] == "https://status.example.com/api/v2"
    inventory = run_inventory(
        ["--root", str(host), "--user", "www-data", "--json", str(tmp_path / "www-data.cron")],
        capsys,
    )
    assert "***" not in inventory


# --- item 3: a source that cannot be read is a usage error ----------------------------


def test_a_missing_or_unreadable_source_is_a_usage_error(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    missing = tmp_path / "nonexistent"
    base = ["--root", str(host), "--into", str(repo), "--secrets-file", str(tmp_path / "s")]
    with pytest.raises(UsageError, match=f"^{missing}: No such file or directory$") as raised:
        run_import([str(missing), "--system", *base], capsys)
    assert raised.value.exit_code == EXIT_USAGE
    with pytest.raises(UsageError, match=f"^{tmp_path}: Is a directory$"):
        run_import([str(tmp_path), "--user", "www-data", *base], capsys)
    good = tmp_path / "good.cron"
    good.write_text("0 1 * * * /bin/true\n")
    with pytest.raises(UsageError, match="No such file or directory"):
        run_import([str(good), str(missing), "--user", "www-data", *base], capsys)
    if os.geteuid() != 0:  # root reads a 000 file all the same
        locked = tmp_path / "locked.cron"
        locked.write_text("0 1 * * * /bin/true\n")
        locked.chmod(0)
        with pytest.raises(UsageError, match=f"^{locked}: Permission denied$"):
            run_import([str(locked), "--user", "www-data", *base], capsys)
    assert not repo.exists() and not (tmp_path / "s").exists()


def test_user_without_sources_reads_that_users_crontab_or_refuses(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    base = ["--root", str(host), "--into", str(repo), "--secrets-file", str(tmp_path / "s")]
    spool = host / "var/spool/cron/crontabs"
    with pytest.raises(UsageError, match=f"^no crontab for user nosuchuser in {spool}$"):
        run_import(["--user", "nosuchuser", *base], capsys)
    spool.mkdir(parents=True)
    (spool / "root").write_text("0 1 * * * /usr/bin/root-job\n")
    (spool / "root").chmod(0o600)
    (spool / "www-data").write_text("0 2 * * * /usr/bin/web-job\n")
    (spool / "www-data").chmod(0o600)
    (host / "etc/crontab").write_text("0 3 * * * root /usr/bin/system-job\n")
    with pytest.raises(UsageError, match="no crontab for user nosuchuser"):
        run_import(["--user", "nosuchuser", *base], capsys)
    assert not repo.exists()
    code, out = run_import(["--user", "www-data", *base], capsys)
    assert code == 0 and "imported 1 jobs from 1 crontabs" in out, out
    assert [p.name for p in (repo / "jobs").iterdir()] == ["web-job.toml"]
    code, out = run_import(["--system", "--into", str(tmp_path / "sys"), *base[:2]], capsys)
    assert code == 0 and "imported 1 jobs from 1 crontabs" in out, out
    assert [p.name for p in (tmp_path / "sys/jobs").iterdir()] == ["system-job.toml"]


def test_the_hosts_default_set_with_files_absent_still_imports(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (host / "etc/crontab").write_text("0 3 * * * root /usr/bin/system-job\n")
    repo = tmp_path / "repo"  # no cron.d, no spool
    code, out = run_import(["--root", str(host), "--into", str(repo)], capsys)
    assert code == 0 and "imported 1 jobs from 1 crontabs" in out, out


# --- item 4: a shared secrets file never loses a value ---------------------------------


def test_a_shared_secrets_file_refuses_another_value_under_the_same_name(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "private/shared.toml"
    first = secretledger.legacy_input(tmp_path / "a.cron")
    second = secretledger.legacy_input(tmp_path / "b.cron")
    first.write_text("10 23 * * * root mysqldump -u x -pFirstPw1 db\n")
    second.write_text("10 23 * * * root mysqldump -u x -pOtherPw2 db\n")

    def run(source: Path, repo: str, *extra: str) -> tuple[int, str]:
        argv = [str(source), "--system", "--root", str(host), "--into", str(tmp_path / repo)]
        return run_import([*argv, "--secrets-file", str(shared), *extra], capsys)

    assert run(first, "repo-a")[0] == 0
    before = shared.read_bytes()
    assert tomllib.loads(before.decode()) == {"imported/mysqldump-MYSQL_PWD": "FirstPw1"}
    with pytest.raises(SecretsNotStored) as raised:
        run(second, "repo-b")
    message = str(raised.value)
    assert raised.value.exit_code == EXIT_INSTALL
    assert "imported/mysqldump-MYSQL_PWD" in message and "--secret-prefix" in message
    assert "FirstPw1" not in message and "OtherPw2" not in message
    assert shared.read_bytes() == before
    assert not (tmp_path / "repo-b").exists()
    assert run(first, "repo-c")[0] == 0  # the same value under the same name is fine
    assert shared.read_bytes() == before
    assert run(second, "repo-d", "--secret-prefix", "host-b")[0] == 0
    assert tomllib.loads(shared.read_text()) == {
        "imported/mysqldump-MYSQL_PWD": "FirstPw1",
        "host-b/mysqldump-MYSQL_PWD": "OtherPw2",
    }


def test_per_user_secrets_files_are_all_checked_before_any_is_written(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "private/{user}.toml"
    source = secretledger.legacy_input(tmp_path / "sys.cron")
    source.write_text(
        "0 1 * * * root mysqldump -pRootPw11 db\n0 2 * * * www-data redis-cli -a WebPw22 save\n"
    )
    argv = [str(source), "--system", "--root", str(host), "--secrets-file", str(template)]
    assert run_import([*argv, "--into", str(tmp_path / "one")], capsys)[0] == 0
    web = tmp_path / "private/www-data.toml"
    web.write_text('"imported/redis-cli-REDISCLI_AUTH" = "Changed33"\n')
    web.chmod(0o600)
    before = every_file(tmp_path / "private")
    with pytest.raises(SecretsNotStored, match="redis-cli-REDISCLI_AUTH"):
        run_import([*argv, "--into", str(tmp_path / "two")], capsys)
    assert every_file(tmp_path / "private") == before
    assert not (tmp_path / "two").exists()


def test_a_secrets_file_with_tables_is_not_merged_into(
    host: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = tmp_path / "s.toml"
    secrets.write_text('[db]\npassword = "kept"\n')
    secrets.chmod(0o600)
    source = secretledger.legacy_input(tmp_path / "sys.cron")
    source.write_text("0 1 * * * root mysqldump -pRootPw11 db\n")
    argv = [str(source), "--system", "--root", str(host), "--into", str(tmp_path / "r")]
    with pytest.raises(UsageError, match="not plain values \\(db\\)"):
        run_import([*argv, "--secrets-file", str(secrets)], capsys)
    assert secrets.read_text() == '[db]\npassword = "kept"\n'


# --- item 4 in Secrets Manager ---------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_running() as url:
        yield url


def test_secrets_manager_never_overwrites_another_value(
    host: Path,
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
        f'[repo]\nurl = "/nowhere"\n[paths]\nroot = "{host}"\n'
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_endpoint}"\n'
    )
    source = secretledger.legacy_input(tmp_path / "sys.cron")
    source.write_text(
        "0 1 * * * root mysqldump -pAwsPw111 db\n0 2 * * * root redis-cli -a Rd222 x\n"
    )
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    prefix = "conflict-host"
    mysql, redis = f"{prefix}/mysqldump-MYSQL_PWD", f"{prefix}/redis-cli-REDISCLI_AUTH"
    sm.create_secret(Name=mysql, SecretString="SomeoneElses")

    def run(repo: str) -> tuple[int, str]:
        argv = [str(source), "--system", "--config", str(config), "--into", str(tmp_path / repo)]
        return run_import([*argv, "--create-secrets", "--secret-prefix", prefix], capsys)

    with pytest.raises(SecretsNotStored) as raised:
        run("one")
    assert mysql in str(raised.value) and "--secret-prefix" in str(raised.value)
    assert "SomeoneElses" not in str(raised.value) and "AwsPw111" not in str(raised.value)
    assert sm.get_secret_value(SecretId=mysql)["SecretString"] == "SomeoneElses"
    names = {s["Name"] for s in sm.list_secrets()["SecretList"]}
    assert redis not in names  # checked before anything was created
    assert not (tmp_path / "one").exists()
    sm.put_secret_value(SecretId=mysql, SecretString="AwsPw111")
    code, out = run("two")  # the same value under the same name: left as it is
    assert code == 0, out
    assert sm.get_secret_value(SecretId=redis)["SecretString"] == "Rd222"
    versions = sm.list_secret_version_ids(SecretId=mysql)["Versions"]
    assert len(versions) == 2  # create + our put: the import wrote no new version
