"""A job whose ``user`` changes: the new user gets fresh run and log folders, and the
old user's records and logs are not handed over. They move, as they are, into
root-only history folders (``runs/.history/JOB/...`` and ``<log_dir>/.history/JOB/...``),
where neither user can read or change them, and ``cronsync history``, ``logs`` and
``status`` still show them to root. Real users, made for the test (root only).
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_shim import ShimSandbox
from test_shim_hardening import cli

from cronsync.cloud.logs import flush_pending
from cronsync.core.runhistory import HISTORY_DIR
from cronsync.host.jobdirs import ensure_job_dirs
from cronsync.run.procs import process_start
from helpers.users import HAS_USERADD, IS_ROOT, as_user, open_dir, temporary_users

pytestmark = pytest.mark.skipif(
    not (IS_ROOT and HAS_USERADD), reason="making users and changing owners needs root"
)

BODY = 'schedule = "* * * * *"\nshell = "echo output of $(id -un)"\n'


@pytest.fixture
def users() -> Iterator[list[pwd.struct_passwd]]:
    with temporary_users(2, prefix="csu") as made:
        yield made


@pytest.fixture
def box(git_env: None) -> Iterator[ShimSandbox]:
    with open_dir("cronsync-user-change-") as base:  # the job users must reach it
        yield ShimSandbox(base)


def files_named(top: Path, name: str) -> list[Path]:
    return [Path(d, name) for d, _dirs, names in os.walk(top) if name in names]


def try_open(path: str, mode: str) -> str:
    try:
        with open(path, mode):
            return "opened"
    except OSError as exc:
        return type(exc).__name__


def test_a_new_user_starts_afresh_and_the_old_history_stays_with_root(
    box: ShimSandbox, users: list[pwd.struct_passwd]
) -> None:
    old, new = users
    box.job("hand", BODY, user=old.pw_name)
    box.sync()
    assert cli(box, "run", "hand").returncode == 0
    old_run = box.last("hand")["run_id"]
    log_dir = box.root / "var/log/cronsync"

    box.job("hand", BODY, user=new.pw_name)
    box.sync()

    # the new user's folders are new: nothing of the old user's is in them
    for folder in (box.runs_dir / "hand", log_dir / "hand"):
        assert os.stat(folder).st_uid == new.pw_uid
        assert [p.name for p in folder.rglob("*") if p.name != "lock"] == []
    # the old record and log still exist, nowhere the new user owns or can reach
    kept = files_named(box.root, f"{old_run}.json") + files_named(box.root, f"{old_run}.log")
    assert len(kept) == 2, kept
    for path in kept:
        assert os.lstat(path).st_uid in (0, old.pw_uid)
        history = next(p for p in path.parents if p.name == HISTORY_DIR)
        info = os.stat(history)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o700)
        for user in (new, old):  # neither user can read or rewrite the old history
            assert as_user(user, lambda p=str(path): try_open(p, "rb")) == "PermissionError"
            assert as_user(user, lambda p=str(path): try_open(p, "ab")) == "PermissionError"

    # root still sees the old run: history, its log, the job's last run in status
    history = cli(box, "history", "hand", "--json")
    assert history.returncode == 0, history.stderr
    assert [(r["run_id"], r["user"]) for r in json.loads(history.stdout)] == [
        (old_run, old.pw_name)
    ]
    text = cli(box, "history", "hand")
    assert old_run in text.stdout and old.pw_name in text.stdout, text.stdout
    logs = cli(box, "logs", "hand", "--run", old_run)
    assert logs.returncode == 0, logs.stderr
    assert f"output of {old.pw_name}" in logs.stdout
    status = json.loads(cli(box, "status", "--json").stdout)
    row = next(job for job in status["jobs"] if job["name"] == "hand")
    assert row["last_run"]["run_id"] == old_run

    # the new user's runs work and come first
    assert cli(box, "run", "hand").returncode == 0
    new_run = box.last("hand")
    assert new_run["user"] == new.pw_name
    history = json.loads(cli(box, "history", "hand", "--json").stdout)
    assert [r["run_id"] for r in history] == [new_run["run_id"], old_run]
    logs = cli(box, "logs", "hand")
    assert f"output of {new.pw_name}" in logs.stdout


def test_changing_back_keeps_both_histories_apart(
    box: ShimSandbox, users: list[pwd.struct_passwd]
) -> None:
    old, new = users
    runs = []
    for user in (old, new, old):
        box.job("hand", BODY, user=user.pw_name)
        box.sync()
        assert cli(box, "run", "hand").returncode == 0
        runs.append((box.last("hand")["run_id"], user.pw_name))

    history = json.loads(cli(box, "history", "hand", "--json").stdout)
    assert [(r["run_id"], r["user"]) for r in history] == runs[::-1]
    for run_id, user in runs:
        logs = cli(box, "logs", "hand", "--run", run_id)
        assert f"output of {user}" in logs.stdout, logs.stderr
    # the old user's current folder holds only its newest run
    names = [p.name for p in (box.runs_dir / "hand").glob("2*.json")]
    assert names == [f"{runs[2][0]}.json"]


def test_folders_without_history_are_simply_handed_over(
    tmp_path: Path, users: list[pwd.struct_passwd]
) -> None:
    old, new = users
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    ensure_job_dirs(runs, logs, {"job": old.pw_name})
    (runs / "job" / "lock").write_text("12 34 old-run 5 6\n")
    (runs / "job" / "pending").mkdir(mode=0o700)
    for path in (runs / "job" / "lock", runs / "job" / "pending"):
        os.chown(path, old.pw_uid, old.pw_gid)
    kept = os.open(runs / "job" / "lock", os.O_RDONLY)  # as the old user may keep it

    try:
        notes = ensure_job_dirs(runs, logs, {"job": new.pw_name})
        old_lock = os.fstat(kept)
    finally:
        os.close(kept)

    assert notes == []
    assert not (runs / HISTORY_DIR).exists() and not (logs / HISTORY_DIR).exists()
    for path in (runs / "job", runs / "job" / "lock", runs / "job" / "pending", logs / "job"):
        assert os.lstat(path).st_uid == new.pw_uid, path
    # the lock is a new, empty file: the old user's descriptors are on the old one
    lock = os.stat(runs / "job" / "lock")
    assert (old_lock.st_nlink, lock.st_ino != old_lock.st_ino) == (0, True)
    assert (lock.st_size, stat.S_IMODE(lock.st_mode)) == (0, 0o600)


def test_a_lock_that_is_a_folder_is_set_aside_not_handed_over(
    tmp_path: Path, users: list[pwd.struct_passwd]
) -> None:
    old, new = users
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    ensure_job_dirs(runs, logs, {"job": old.pw_name})
    (runs / "job" / "lock").mkdir()
    (runs / "job" / "lock" / "kept").write_text("the old user's")
    for path in (runs / "job" / "lock", runs / "job" / "lock" / "kept"):
        os.chown(path, old.pw_uid, old.pw_gid)

    notes = ensure_job_dirs(runs, logs, {"job": new.pw_name})

    assert len(notes) == 1 and old.pw_name in notes[0], notes
    assert list((runs / "job").iterdir()) == []
    (moved,) = (runs / HISTORY_DIR / "job").iterdir()
    assert os.stat(moved / "lock" / "kept").st_uid == old.pw_uid


def test_a_history_move_never_follows_links_and_says_what_it_did(
    tmp_path: Path, users: list[pwd.struct_passwd]
) -> None:
    old, new = users
    runs, logs = tmp_path / "runs", tmp_path / "logs"
    ensure_job_dirs(runs, logs, {"job": old.pw_name})
    outside = tmp_path / "outside"
    outside.write_text("root's")
    (runs / "job" / "20250101T000000Z-abcd.json").write_text("{}")
    (runs / "job" / "escape").symlink_to(outside)
    (logs / "job" / "20250101T000000Z-abcd.log").write_text("out")
    for path in [*(runs / "job").iterdir(), *(logs / "job").iterdir()]:
        os.lchown(path, old.pw_uid, old.pw_gid)

    notes = ensure_job_dirs(runs, logs, {"job": new.pw_name})

    assert len(notes) == 1 and "job" in notes[0] and old.pw_name in notes[0], notes
    assert os.stat(outside).st_uid == 0  # not followed, not given to anyone
    moved = list((runs / HISTORY_DIR / "job").iterdir())
    assert len(moved) == 1 and moved[0].name.endswith(f"-{old.pw_name}")
    assert (moved[0] / "escape").is_symlink()
    assert (logs / HISTORY_DIR / "job" / moved[0].name / "20250101T000000Z-abcd.log").exists()
    assert os.stat(runs / "job").st_uid == new.pw_uid
    assert list((runs / "job").iterdir()) == []


@pytest.mark.parametrize("policy", ["replace", "forbid"])
def test_the_old_user_s_descriptor_on_the_lock_names_no_group_to_the_new_user(
    box: ShimSandbox, users: list[pwd.struct_passwd], policy: str
) -> None:
    """The old user keeps a descriptor on the lock it made; once the job is root's, a
    holder line written through it must not make root's run stop (replace) or wait for
    (forbid) the process group it names: the handed-over folder gets a fresh lock."""
    old, _new = users
    body = f'schedule = "* * * * *"\nconcurrency = "{policy}"\nshell = "true"\n'
    box.job("hand", body, user=old.pw_name)
    box.sync()
    folder = box.runs_dir / "hand"
    writer = subprocess.Popen(
        ["/bin/sh", "-c", 'exec 4<>lock; echo ready; read line; printf "%s\\n" "$line" >&4'],
        cwd=folder,
        user=old.pw_uid,
        group=old.pw_gid,
        extra_groups=[],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)  # root's: sshd, say
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        box.job("hand", body)  # now root's job
        box.sync()
        lock = os.stat(folder / "lock")
        assert (lock.st_uid, stat.S_IMODE(lock.st_mode)) == (0, 0o600)
        assert os.stat(f"/proc/{writer.pid}/fd/4").st_ino != lock.st_ino
        forged = f"999999999 {victim.pid} 20200101T000000Z-dead 1 {process_start(victim.pid)}"
        writer.communicate(forged + "\n", timeout=60)
        assert writer.returncode == 0

        assert box.run("hand").returncode == 0
        assert box.last("hand")["status"] == "succeeded", box.last("hand")
        assert victim.poll() is None, "root's run signalled a group the old user named"
    finally:
        writer.kill()
        writer.communicate(timeout=20)  # reaped, its pipes closed
        victim.kill()
        victim.wait(timeout=20)


def test_logs_never_print_a_file_an_earlier_user_linked_in(
    box: ShimSandbox, users: list[pwd.struct_passwd]
) -> None:
    """The old user plants ``<id>.log -> a root-only file`` and a record dated in the
    future naming it; after the user change, root's ``cronsync logs`` must not print it."""
    old, new = users
    box.job("hand", BODY, user=old.pw_name)
    box.sync()
    assert cli(box, "run", "hand").returncode == 0
    secret = box.base / "root-only"
    secret.write_text("root's own words\n")
    secret.chmod(0o600)
    forged = "29990101T000000Z-beef"  # dated in the future: the newest run
    link = box.root / "var/log/cronsync/hand" / f"{forged}.log"
    link.symlink_to(secret)
    record = dict(box.last("hand"), run_id=forged, started="2999-01-01T00:00:00.000Z")
    record.update(ended="2999-01-01T00:00:01.000Z", log=str(link))
    planted = box.runs_dir / "hand" / f"{forged}.json"
    planted.write_text(json.dumps(record))
    for path in (link, planted):
        os.lchown(path, old.pw_uid, old.pw_gid)

    box.job("hand", BODY, user=new.pw_name)
    box.sync()

    history = json.loads(cli(box, "history", "hand", "--json").stdout)
    assert history[0]["run_id"] == forged  # the forged record is the newest
    for args in ((), ("--run", forged)):
        shown = cli(box, "logs", "hand", *args)
        assert "root's own words" not in shown.stdout
        assert shown.returncode == 1, shown.stdout
    real = history[1]["run_id"]
    assert f"output of {old.pw_name}" in cli(box, "logs", "hand", "--run", real).stdout


class NothingSent:
    """A CloudWatch sender (our seam) that records what it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, group: str, stream: str, events: list[object]) -> None:
        self.sent.append((group, stream))


def test_deliveries_pass_over_the_history_as_root_and_as_the_job_user(
    users: list[pwd.struct_passwd],
) -> None:
    old, new = users
    with open_dir("cronsync-user-flush-") as base:
        runs, logs = base / "runs", base / "logs"
        ensure_job_dirs(runs, logs, {"job": old.pw_name})
        pending = runs / "job" / "pending"
        pending.mkdir(mode=0o700)
        (pending / "20250101T000000Z-abcd.json").write_text("{}")
        for path in (pending, pending / "20250101T000000Z-abcd.json"):
            os.chown(path, old.pw_uid, old.pw_gid)
        assert len(ensure_job_dirs(runs, logs, {"job": new.pw_name})) == 1  # set aside

        sender = NothingSent()
        summary = flush_pending(runs, sender, time.monotonic() + 30, host="h", log_group="g")
        assert (summary.delivered, summary.errors, summary.messages) == (0, 0, ())
        assert sender.sent == []

        def as_job_user() -> list[str]:
            found = flush_pending(
                runs,
                NothingSent(),
                time.monotonic() + 30,
                host="h",
                log_group="g",
                only_uid=new.pw_uid,
            )
            return list(found.messages)

        assert as_user(new, as_job_user) == []
