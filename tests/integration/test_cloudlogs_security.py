"""Root's CloudWatch Logs flush against hostile job users (two review findings).

Job users own ``runs/<job>`` (jobdirs.ensure_job_dirs) and write their own pending
files, so root's flush must

1. never follow a symbolic link they control, nor create, change or remove anything
   outside the real ``runs/<job>/pending/`` of the file's own job (nor read a log
   through another user's symlink);
2. deliver a pending file only to the configured log group and the stream
   ``HOST/JOB/RUN-ID`` of the job directory it is in and its own name, whatever group
   and stream the file names.

daemon (uid 1) runs job-a, bin (uid 2) runs job-b; what they do is done by processes
running as them (``sh`` as that user), mid-delivery through our own sender seam.
Sending is recorded, not performed: no AWS needed.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from cronsync.cloud.batch import Event
from cronsync.cloud.forward import flush_all
from cronsync.cloud.logs import (
    FlushSummary,
    LogsSender,
    Pending,
    deliver,
    flush_pending,
    load_pending,
    pending_path,
    save_pending,
)
from cronsync.core import logformat
from cronsync.host.awsclients import AwsSettings

HOST = "batch-1"
GROUP = "/cronsync/jobs"
A, B = 1, 2  # daemon runs job-a, bin runs job-b
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: job users are real users")


class Recorder(LogsSender):
    """Our sender seam: records what would be sent; runs ``before_send`` once, first."""

    def __init__(self, before_send: Optional[Callable[[], None]] = None) -> None:
        super().__init__(AwsSettings(region="us-east-1"))
        self.before_send = before_send
        self.sent: list[tuple[str, str, list[str]]] = []

    def send(self, group: str, stream: str, events: list[Event]) -> None:
        hook, self.before_send = self.before_send, None
        if hook is not None:
            hook()
        self.sent.append((group, stream, [event.message for event in events]))


def as_user(uid: int, script: str) -> None:
    """Run ``script`` with sh as the user ``uid`` (a job user acting on its own)."""
    subprocess.run(
        ["sh", "-eu", "-c", script], user=uid, group=uid, extra_groups=[], check=True, timeout=120
    )


class Box:
    """A runs directory and a log directory laid out as jobdirs.ensure_job_dirs does."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.runs = base / "runs"
        self.logs = base / "logs"
        for top in (self.runs, self.logs):
            top.mkdir(mode=0o755)

    def job(self, job: str, uid: int) -> None:
        """``runs/JOB`` (0755) with its pending directory (0700), ``logs/JOB`` (0700)."""
        for path, mode in (
            (self.runs / job, 0o755),
            (self.runs / job / "pending", 0o700),
            (self.logs / job, 0o700),
        ):
            path.mkdir(mode=mode)
            os.chmod(path, mode)
            chown(path, uid)

    def run(
        self,
        job: str,
        run_id: str,
        uid: int,
        lines: bytes = b"hello\n",
        *,
        group: str = GROUP,
        stream: Optional[str] = None,
        log: Optional[Path] = None,
        finished: bool = True,
    ) -> Path:
        """A finished run of ``job`` waiting for delivery, as its shim leaves it."""
        if log is None:
            log = self.logs / job / f"{run_id}.log"
            log.write_bytes(logformat.encode_block("o", time.time_ns() // 1_000_000, lines))
            chown(log, uid)
        path = pending_path(self.runs, job, run_id)
        stream = stream or f"{HOST}/{job}/{run_id}"
        save_pending(path, Pending(str(log), group, stream, finished=finished))
        chown(path, uid)
        return path

    def flush(self, sender: LogsSender) -> FlushSummary:
        return flush_pending(self.runs, sender, time.monotonic() + 30, host=HOST, log_group=GROUP)


def chown(path: Path, uid: int) -> None:
    if ROOT:
        os.chown(path, uid, uid, follow_symlinks=False)


@pytest.fixture
def box() -> Iterator[Box]:
    # not under pytest's basetemp: that is private to root, and job users act here
    base = Path(tempfile.mkdtemp(prefix="cronsync-security-"))
    os.chmod(base, 0o755)
    try:
        yield Box(base)
    finally:
        shutil.rmtree(base)


Snapshot = dict[str, tuple[Any, ...]]


def snapshot(top: Path, *skip: Path) -> Snapshot:
    """Every entry under ``top`` (symlinks not followed) but ``skip``: kind, mode,
    owner, inode, mtime and content."""
    found: Snapshot = {}
    for directory, dirs, files in os.walk(top):
        here = Path(directory)
        dirs[:] = [name for name in dirs if here / name not in skip]
        for name in dirs + files:
            path = here / name
            if path in skip:
                continue
            info = os.lstat(path)
            content: Any = None
            if stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                content = path.read_bytes()
            found[str(path.relative_to(top))] = (
                stat.S_IFMT(info.st_mode),
                stat.S_IMODE(info.st_mode),
                info.st_uid,
                info.st_gid,
                info.st_ino,
                info.st_mtime_ns,
                content,
            )
    return found


def b_has_history(box: Box) -> None:
    """job-b's run records: what a redirected write or unlink would hit."""
    for name in ("r1.json", "last.json"):
        as_user(B, f'printf \'{{"run_id": "r1"}}\\n\' > {box.runs}/job-b/{name}')


# --- 1. symlinks the job user controls --------------------------------------------


@needs_root
@pytest.mark.parametrize(
    "swap",
    ["ln -s ../job-b pending", "ln -s ../job-b/pending pending", "mkdir pending"],
)
def test_pending_dir_swapped_mid_delivery_changes_nothing_outside_it(box: Box, swap: str) -> None:
    box.job("job-a", A)
    box.job("job-b", B)
    b_has_history(box)
    box.run("job-a", "r1", A, b"".join(b"line %d\n" % n for n in range(10)))
    job_a = box.runs / "job-a"
    outside = snapshot(box.base, job_a)

    def user_a_swaps_pending() -> None:
        as_user(A, f"cd {job_a} && mv pending pending.real && {swap}")

    sender = Recorder(before_send=user_a_swaps_pending)
    summary = box.flush(sender)

    assert sender.before_send is None, "the swap did not happen"
    assert (summary.delivered, summary.left, summary.errors) == (0, 1, 1)
    assert "was replaced meanwhile; not writing there" in summary.messages[0]
    assert snapshot(box.base, job_a) == outside
    # the real directory kept just its file, untouched, and the swapped-in entry is as
    # user A left it (nothing written through it either)
    real = job_a / "pending.real"
    assert os.listdir(real) == ["r1.json"]
    assert (real / "r1.json").stat().st_uid == A
    if swap.startswith("mkdir"):
        assert os.listdir(job_a / "pending") == []
    else:
        assert (job_a / "pending").is_symlink()

    again = box.flush(Recorder())  # later flushes refuse the link, still touch nothing
    assert snapshot(box.base, job_a) == outside
    assert again.delivered == 0
    if not swap.startswith("mkdir"):
        assert again.messages == ("job-a: refused: pending is a symbolic link",)


@needs_root
def test_pending_dir_that_is_a_symlink_to_another_jobs_is_refused(box: Box) -> None:
    box.job("job-a", A)
    box.job("job-b", B)
    box.run("job-b", "r7", B, b"b's own output\n")
    as_user(A, f"cd {box.runs}/job-a && rmdir pending && ln -s ../job-b/pending pending")

    sender = Recorder()
    summary = box.flush(sender)

    assert sender.sent == [(GROUP, f"{HOST}/job-b/r7", ["b's own output"])]  # once, its own
    assert summary.delivered == 1
    assert summary.messages == ("job-a: refused: pending is a symbolic link",)


@needs_root
def test_a_symlinked_job_directory_is_refused(box: Box) -> None:
    box.job("job-b", B)
    box.run("job-b", "r7", B)
    (box.runs / "job-c").symlink_to("job-b")

    sender = Recorder()
    summary = box.flush(sender)

    assert [stream for _group, stream, _events in sender.sent] == [f"{HOST}/job-b/r7"]
    assert summary.messages == ("job-c: refused: job-c is a symbolic link",)


@needs_root
def test_a_log_reached_through_a_users_symlink_is_not_read(box: Box) -> None:
    box.job("job-a", A)
    private = box.base / "private"  # root's: user A cannot reach what is inside
    private.mkdir(mode=0o700)
    secret = private / "data.log"
    secret.write_bytes(logformat.encode_block("o", 1, b"not for user a\n"))
    chown(secret, A)  # A's file, which A has no way to read
    as_user(A, f"ln -s {private} {box.logs}/job-a/way-in")
    pending = box.run("job-a", "r1", A, log=box.logs / "job-a" / "way-in" / "data.log")

    sender = Recorder()
    summary = box.flush(sender)

    assert sender.sent == []
    assert (summary.delivered, summary.errors) == (0, 1)
    assert "not following the symbolic link 'way-in'" in summary.messages[0]
    assert pending.exists()


@needs_root
def test_a_log_reached_through_roots_own_symlink_is_delivered(box: Box) -> None:
    box.job("job-a", A)
    (box.base / "logs-link").symlink_to(box.logs)  # an operator's link: root's
    log = box.logs / "job-a" / "r1.log"
    log.write_bytes(logformat.encode_block("o", 1, b"fine\n"))
    chown(log, A)
    box.run("job-a", "r1", A, log=box.base / "logs-link" / "job-a" / "r1.log")

    sender = Recorder()
    summary = box.flush(sender)

    assert (summary.delivered, summary.errors) == (1, 0)
    assert sender.sent == [(GROUP, f"{HOST}/job-a/r1", ["fine"])]


@needs_root
def test_another_users_file_in_a_users_pending_dir_is_refused(box: Box) -> None:
    box.job("job-a", A)
    as_user(A, f"chmod 0777 {box.runs}/job-a/pending")  # A opened it up; B plants a file
    box.run("job-a", "r1", B)  # B's log, B's pending file, job-a's stream

    sender = Recorder()
    summary = box.flush(sender)

    assert sender.sent == []
    assert summary.messages == ("job-a/r1: refused: owned by uid 2, its directory by uid 1",)


@needs_root
def test_root_keeps_a_users_rewritten_pending_file_theirs_and_private(box: Box) -> None:
    box.job("job-a", A)
    pending = box.run("job-a", "r1", A, finished=False)  # still running

    summary = box.flush(Recorder())

    assert summary.left == 1 and summary.sent_events == 1
    info = pending.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (A, A, 0o600)
    assert sorted(os.listdir(pending.parent)) == ["r1.json"]  # no temporary file left


# --- 2. where a pending file may send ----------------------------------------------


@pytest.mark.parametrize(
    ("group", "stream"),
    [
        (GROUP, f"{HOST}/job-b/r1"),  # another job's history
        ("/other/group", f"{HOST}/job-a/r1"),  # another group (or the group before a change)
        (GROUP, "other-host/job-a/r1"),  # another host (or this one before a rename)
        (GROUP, f"{HOST}/job-a/r2"),  # another run
        (GROUP, f"{HOST}/job-a/r1/x"),
    ],
)
def test_a_pending_file_naming_another_group_or_stream_goes_to_its_own_run_only(
    box: Box, group: str, stream: str
) -> None:
    box.job("job-a", A)
    pending = box.run("job-a", "r1", A, group=group, stream=stream)

    sender = Recorder()
    summary = box.flush(sender)

    assert sender.sent == [(GROUP, f"{HOST}/job-a/r1", ["hello"])]
    assert (summary.delivered, summary.left, summary.errors) == (1, 0, 0)
    assert not pending.exists()


def test_a_pending_file_is_delivered_to_its_own_jobs_stream_only(box: Box) -> None:
    box.job("job-a", A)
    box.job("job-b", B)
    box.run("job-a", "r1", A, b"from a\n")
    box.run("job-b", "r1", B, b"from b\n")

    sender = Recorder()
    summary = box.flush(sender)

    assert (summary.delivered, summary.errors) == (2, 0)
    assert sorted(sender.sent) == [
        (GROUP, f"{HOST}/job-a/r1", ["from a"]),
        (GROUP, f"{HOST}/job-b/r1", ["from b"]),
    ]


def test_flush_all_takes_the_host_and_log_group_from_its_caller(box: Box) -> None:
    box.job("job-a", A)
    pending = box.run("job-a", "r1", A, group="/old/group", stream="other-host/job-b/r1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens

    summary = flush_all(
        box.runs,
        AwsSettings(region="us-east-1", endpoint_url=nowhere),
        time.monotonic() + 30,
        host=HOST,
        log_group=GROUP,
    )

    assert (summary["delivered"], summary["left"], summary["errors"]) == (0, 1, 1)
    kept = load_pending(pending)  # the failed attempt is recorded, aimed at its own run
    assert kept is not None and kept.attempts == 1
    assert (kept.group, kept.stream) == (GROUP, f"{HOST}/job-a/r1")


def test_deliver_and_the_live_forwarder_send_to_their_target_only(box: Box) -> None:
    from cronsync.cloud.logs import LiveForwarder

    box.job("job-a", A)
    target = (GROUP, f"{HOST}/job-a/r1")
    for forward in (
        lambda path, sender: deliver(path, sender, time.monotonic() + 30, target=target),
        lambda path, sender: LiveForwarder(path, lambda: sender, target=target).finish(
            time.monotonic() + 5
        ),
    ):
        pending = box.run("job-a", "r1", A, stream=f"{HOST}/job-b/r1")
        sender = Recorder()
        outcome = forward(pending, sender)
        assert outcome.error is None and outcome.complete
        assert sender.sent == [(GROUP, f"{HOST}/job-a/r1", ["hello"])]
        assert not pending.exists()
