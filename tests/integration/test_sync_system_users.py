"""Root and system users run jobs only when agent.toml names them in ``users.allowed``.

Without an allowed list any user may run jobs, except root and the users whose uid is
below the host's UID_MIN (``/etc/login.defs``; 1000 when it does not say): a commit
with such a job is refused, with one line saying how to allow it, and the last good
release stays installed. ``cronsync validate`` in a repository's CI knows no host: it
leaves users to the host's rules, which ``--host`` applies.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from cronsync.host.hostinfo import DEFAULT_UID_MIN, read_uid_min, system_users
from helpers.sandbox import Sandbox, agent_toml

SCRIPT = "#!/bin/sh\necho hello\n"


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def job_as(user: str) -> str:
    return (
        'description = "Cleans up"\nowner = "ops@example.com"\nschedule = "5 6 * * *"\n'
        f'user = "{user}"\ncommand = ["scripts/clean.sh"]\n'
    )


def without_allowed_list(sandbox: Sandbox, extra: str = "") -> None:
    """agent.toml with no ``[users] allowed`` (must_exist stays false)."""
    text = agent_toml(str(sandbox.upstream.bare), sandbox.root, extra)
    sandbox.config_path.write_text(text.replace('allowed = ["batch"]\n', ""))


def push_job(sandbox: Sandbox, user: str) -> str:
    sandbox.upstream.write("jobs/clean.toml", job_as(user))
    sandbox.upstream.write("scripts/clean.sh", SCRIPT, 0o755)
    return sandbox.upstream.commit_and_push(f"clean as {user}")


@pytest.mark.parametrize(
    "user",
    [
        "root",
        pytest.param(
            "daemon",
            marks=pytest.mark.skipif(
                not user_exists("daemon") or pwd.getpwnam("daemon").pw_uid >= read_uid_min(),
                reason="this host has no system user 'daemon'",
            ),
        ),
    ],
)
def test_a_root_or_system_job_is_refused_and_the_last_good_stays(
    synced: Sandbox, user: str
) -> None:
    without_allowed_list(synced)
    good = synced.state()["installed"]
    cron_before = synced.cron_file.read_bytes()
    link_before = os.readlink(synced.current)
    bad = push_job(synced, user)

    done = synced.cli("sync")

    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    assert f"commit {bad[:12]} refused" in done.stderr
    lines = [line.strip() for line in done.stderr.splitlines() if "jobs/clean.toml" in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("jobs/clean.toml:4: user: "), lines
    assert f"'{user}' is refused on host batch-1" in lines[0]
    assert f"users.allowed of {synced.config_path}" in lines[0]
    assert f"add '{user}'" in lines[0]
    assert synced.cron_file.read_bytes() == cron_before
    assert os.readlink(synced.current) == link_before
    state = synced.state()
    assert state["installed"] == good
    assert state["last_sync"]["result"] == "refused"
    assert state["last_sync"]["commit"] == bad


def test_root_named_in_the_allowed_list_is_installed(synced: Sandbox) -> None:
    synced.write_config()
    synced.config_path.write_text(
        synced.config_path.read_text().replace('allowed = ["batch"]', 'allowed = ["batch", "root"]')
    )
    push_job(synced, "root")

    outcome = synced.sync()

    assert outcome.record.result == "installed", outcome.record
    assert f"5 6 * * * root {synced.shim} clean\n" in synced.cron_file.read_text()


def test_an_ordinary_user_needs_no_allowed_list(synced: Sandbox) -> None:
    without_allowed_list(synced)
    push_job(synced, "batch")  # not on this host (must_exist = false): no uid, no refusal

    outcome = synced.sync()

    assert outcome.record.result == "installed", outcome.record


def test_validate_in_ci_leaves_root_to_the_host_and_refuses_it_with_host(
    sandbox: Sandbox,
) -> None:
    without_allowed_list(sandbox)
    push_job(sandbox, "root")

    ci = sandbox.cli("validate", "--no-lint", "--strict", str(sandbox.upstream.work))
    assert ci.returncode == 0, ci
    assert "0 errors, 0 warnings" in ci.stdout

    host = sandbox.cli("validate", "--no-lint", "--host", str(sandbox.upstream.work))
    assert host.returncode == 1, host
    assert "jobs/clean.toml:4: user: user 'root' is refused on host batch-1" in host.stdout


def test_a_rule_added_by_an_upgrade_refuses_the_installed_commit(
    synced: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root job installed by an older cronsync, which had no root rule, is validated
    again by the version that has it, though nothing new was pushed: the rules version is
    part of the config digest, which decides "up to date"."""
    from cronsync.core import validate
    from cronsync.host import build

    without_allowed_list(synced)
    push_job(synced, "root")
    rules = getattr(build, "RULES_VERSION", 1)
    with monkeypatch.context() as older:  # the older cronsync: fewer rules
        older.setattr(build, "RULES_VERSION", rules - 1, raising=False)
        older.setattr(validate, "_is_system_user", lambda user, host: False)
        assert synced.sync().record.result == "installed"

    outcome = synced.sync()  # after the upgrade, nothing new upstream

    assert outcome.record.result == "refused", outcome.record
    assert outcome.record.errors[0]["message"].startswith("user 'root' is refused"), outcome


# --- UID_MIN of /etc/login.defs -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("UID_MIN\t\t\t 1000\nUID_MAX 60000\n", 1000),
        ("# UID_MIN 10\nUID_MIN 500\n", 500),
        ("UID_MIN 500\nUID_MIN 2000\n", 2000),  # the last one counts, as for shadow
        ("  UID_MIN   0x3E8  \n", 1000),
        ("UID_MIN 01750\n", 1000),  # octal, as shadow's strtol reads it
        ("SYS_UID_MIN 100\nSUB_UID_MIN 100000\n", DEFAULT_UID_MIN),
        ("UID_MIN\n", DEFAULT_UID_MIN),
        ("UID_MIN many\n", DEFAULT_UID_MIN),
        ("UID_MIN -5\n", DEFAULT_UID_MIN),
        ("UID_MIN 99999999999999999999\n", DEFAULT_UID_MIN),
        ("", DEFAULT_UID_MIN),
    ],
)
def test_uid_min_is_read_robustly(tmp_path: Path, text: str, expected: int) -> None:
    (tmp_path / "login.defs").write_text(text)
    assert read_uid_min(tmp_path) == expected


def test_uid_min_without_login_defs_or_unreadable_is_debians_default(tmp_path: Path) -> None:
    assert DEFAULT_UID_MIN == 1000
    assert read_uid_min(tmp_path) == 1000
    (tmp_path / "login.defs").write_bytes(b"UID_MIN \xff\xfe 7\n")
    assert read_uid_min(tmp_path) == 1000
    (tmp_path / "login.defs").unlink()
    (tmp_path / "login.defs").mkdir()
    assert read_uid_min(tmp_path) == 1000


def test_system_users_are_those_below_uid_min() -> None:
    below = system_users(1000)
    assert "root" in below
    assert all(pwd.getpwnam(name).pw_uid < 1000 for name in below)
    assert system_users(1) == frozenset(e.pw_name for e in pwd.getpwall() if e.pw_uid == 0)
