"""Run records, the run lock's holder line and their readers, against a job user who
can write anything into its runs directory; the shim's start-up stays light."""

from __future__ import annotations

import io
import json
import os
import pwd
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from cronsync.cli import runs as cli_runs
from cronsync.core import release
from cronsync.core.health import stale_jobs
from cronsync.core.logformat import CRONSYNC, ERR, OUT, encode_block, plain_text
from cronsync.core.views import _run_summary
from cronsync.run.lock import HOLDER_LINE, JobLock, parse_holder
from cronsync.run.record import RunRecord
from cronsync.run.store import (
    MAX_RECORD_BYTES,
    list_records,
    read_last,
    read_small_file,
    write_record,
)
from helpers.startup import modules_loaded


def record(**changes: Any) -> RunRecord:
    base = RunRecord(
        run_id="20260101T000000Z-abcd",
        job="job",
        host="h",
        user="u",
        commit="c" * 40,
        release="r",
        started="2026-01-01T00:00:00.000Z",
    )
    return base.finished(**changes)


def test_from_json_round_trips_a_record() -> None:
    done = record(status="succeeded", duration=1.5, exit_code=0, extra={"a": [1]})
    assert RunRecord.from_json(done.to_json()) == done


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration", "x"),
        ("duration", True),
        ("exit_code", 1.5),
        ("exit_code", "0"),
        ("signal", False),
        ("timed_out", 1),
        ("status", None),
        ("run_id", 7),
        ("started", None),
        ("log", ["/etc/shadow"]),
        ("reason", {}),
        ("output_bytes", None),
        ("by_hand", "yes"),
        ("extra", []),
        ("format", 2),
    ],
)
def test_from_json_refuses_any_field_of_the_wrong_type(field: str, value: Any) -> None:
    data = record(status="succeeded").to_json()
    data[field] = value
    assert RunRecord.from_json(data) is None


def test_from_json_needs_the_identity_fields() -> None:
    data = record().to_json()
    del data["run_id"]
    assert RunRecord.from_json(data) is None
    assert RunRecord.from_json("x") is None and RunRecord.from_json(None) is None


def test_readers_skip_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    (tmp_path / "job").mkdir()
    good = record(status="succeeded", ended="2026-01-01T00:00:01.000Z")
    write_record(tmp_path, good)
    assert [r.run_id for r in list_records(tmp_path, "job")] == [good.run_id]
    assert read_last(tmp_path, "job")["last_success"] == good.to_json()

    directory = tmp_path / "job"
    os.mkfifo(directory / "20990101T000000Z-fifo.json")
    (directory / "20990101T000000Z-link.json").symlink_to(directory / f"{good.run_id}.json")
    other = record(run_id="20990101T000000Z-othr", job="another")
    (directory / f"{other.run_id}.json").write_text(json.dumps(other.to_json()))
    big = directory / "20990101T000000Z-big0.json"
    big.write_bytes(b" " * MAX_RECORD_BYTES + b"{}")
    deep = directory / "20990101T000000Z-deep.json"
    deep.write_bytes(b"[" * 50_000 + b"]" * 50_000)
    assert [r.run_id for r in list_records(tmp_path, "job")] == [good.run_id]
    with pytest.raises(ValueError, match="larger than"):
        read_small_file(big)
    with pytest.raises(OSError, match="not a regular file"):
        read_small_file(directory / "20990101T000000Z-fifo.json")

    last = directory / "last.json"
    last.write_text(json.dumps({"format": 1, "last_run": good.to_json(), "last_success": "x"}))
    assert read_last(tmp_path, "job") == {
        "format": 1,
        "last_run": good.to_json(),
        "last_success": None,
    }
    last.unlink()
    os.mkfifo(last)
    assert read_last(tmp_path, "job") == {}
    # and a run still writes last.json over the FIFO, keeping nothing of it
    write_record(tmp_path, record(run_id="20260101T000001Z-abcd", status="failed"))
    assert read_last(tmp_path, "job")["last_run"]["status"] == "failed"


def test_holder_line_is_written_whole_at_a_fixed_width(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    path.write_text("junk " * 100)  # longer than a line: cut when taken
    lock = JobLock(path, "20260101T000000Z-abcd")
    assert lock.try_acquire()
    try:
        assert lock.previous == (0, 0, "")  # "junk" is no pid
        data = path.read_bytes()
        assert len(data) == HOLDER_LINE and data.endswith(b"\n")
        assert lock.holder_line() == (os.getpid(), 0, "20260101T000000Z-abcd")
        lock.note_holder(4242)
        assert len(path.read_bytes()) == HOLDER_LINE
        assert lock.holder() == (os.getpid(), 4242)
        lock.note_holder(None)
        assert lock.holder() == (os.getpid(), 0)
        assert not JobLock(path).try_acquire()
    finally:
        lock.release()
    again = JobLock(path, "next")
    assert again.try_acquire()
    again.release()
    assert again.previous == (os.getpid(), 0, "20260101T000000Z-abcd")


@pytest.mark.parametrize(
    ("data", "holder"),
    [
        (b"12 34 run\n", (12, 34, "run")),
        (b"12\n", (12, 0, "")),
        (b"", (0, 0, "")),
        (b"x y z\n", (0, 0, "")),
        (b"-5 -1\n", (0, 0, "")),
        (b"12 34 run\n99 99 other\n", (12, 34, "run")),
    ],
)
def test_parse_holder(data: bytes, holder: tuple[int, int, str]) -> None:
    assert parse_holder(data) == holder


def test_the_lock_refuses_a_symlink_or_a_fifo(tmp_path: Path) -> None:
    target = tmp_path / "target"
    (tmp_path / "lock").symlink_to(target)
    with pytest.raises(OSError):
        JobLock(tmp_path / "lock").try_acquire()
    assert not target.exists()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError):
        JobLock(tmp_path / "fifo").try_acquire()
    assert JobLock(tmp_path / "fifo").holder_line() == (0, 0, "")


NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)
JOBS = {
    "jobs": {
        "a": {"installed": True, "success": {"within": 3600}},
        "b": {"installed": True, "success": {"within": True}},
        "c": "not a job",
        "d": {"installed": True, "success": "x"},
    }
}


@pytest.mark.parametrize(
    "last",
    [
        {"format": 1, "last_success": "x"},
        {"format": 1, "last_success": {"ended": 5}},
        {"format": 1, "last_success": {"ended": "yesterday"}},
        [1],
        "x",
        None,
    ],
)
def test_stale_jobs_takes_garbage_for_no_success(last: Any) -> None:
    stale = stale_jobs(JOBS, {"a": last, "b": last, "d": last}, "2026-01-01T00:00:00Z", NOW)
    assert list(stale) == ["a"] and stale["a"]["last_success"] is None


@pytest.mark.parametrize("ended", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_stale_jobs_takes_times_at_the_calendar_edges(ended: str) -> None:
    last = {"a": {"last_success": {"ended": ended}}}
    assert set(stale_jobs(JOBS, last, None, NOW)) <= {"a"}


def test_stale_jobs_reads_a_naive_time_as_utc() -> None:
    last = {"a": {"last_success": {"ended": "2026-01-01T23:30:00"}}}
    assert stale_jobs(JOBS, last, None, NOW) == {}
    assert stale_jobs({"jobs": "x"}, {}, None, NOW) == {}


def test_run_summary_shows_wrong_types_as_null() -> None:
    good = record(status="failed", exit_code=2, duration=1.0).to_json()
    assert _run_summary(good) == {
        "run_id": good["run_id"],
        "status": "failed",
        "exit_code": 2,
        "started": good["started"],
        "ended": None,
        "duration": 1.0,
        "reason": None,
    }
    shown = _run_summary({**good, "duration": "x", "exit_code": True, "reason": ["r"]})
    assert shown is not None
    assert (shown["duration"], shown["exit_code"], shown["reason"]) == (None, None, None)
    assert _run_summary({**good, "run_id": 5}) is None
    assert _run_summary("x") is None


def test_cron_environment_keeps_nothing_of_the_operator() -> None:
    entry = pwd.getpwuid(os.geteuid())
    env = cli_runs.cron_environment(
        entry,
        {
            "AWS_ACCESS_KEY_ID": "k",
            "SSH_AUTH_SOCK": "/s",
            "SUDO_USER": "op",
            "PATH": "/root/bin",
            "HOME": "/root",
            "TERM": "xterm",
            "LANG": "C.UTF-8",
            "LC_ALL": "C",
        },
    )
    assert env == {
        "HOME": entry.pw_dir,
        "LOGNAME": entry.pw_name,
        "USER": entry.pw_name,
        "SHELL": "/bin/sh",
        "PATH": "/usr/bin:/bin",
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
    }


def test_copy_log_streams_what_plain_text_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"".join(
        [
            encode_block(OUT, 1, b"one\n\x1fescaped\n"),
            encode_block(ERR, 2, b"oops\n" * 7),
            encode_block(CRONSYNC, 3, b"note\n"),
            encode_block(OUT, 4, b"x" * 50 + b"\n"),
            b"partial",
        ]
    )
    path = tmp_path / "log"
    path.write_bytes(data)
    monkeypatch.setattr(cli_runs, "LOG_CHUNK", 7)  # lines split across reads
    for streams in (True, False):
        out = io.BytesIO()
        fd = os.open(path, os.O_RDONLY)
        try:
            cli_runs._copy_log(fd, out, raw=False, with_streams=streams)
        finally:
            os.close(fd)
        assert out.getvalue() == plain_text(data, with_streams=streams)
    raw = io.BytesIO()
    fd = os.open(path, os.O_RDONLY)
    try:
        cli_runs._copy_log(fd, raw, raw=True, with_streams=True)
    finally:
        os.close(fd)
    assert raw.getvalue() == data


@pytest.mark.parametrize(("text", "ok"), [("1", True), ("20", True), ("0", False), ("-1", False)])
def test_positive_int(text: str, ok: bool) -> None:
    if ok:
        assert cli_runs.positive_int(text) == int(text)
    else:
        with pytest.raises(Exception, match="at least 1"):
            cli_runs.positive_int(text)


def test_release_format_the_readers_accept() -> None:
    assert release.format_problem(release.FORMAT, "x") is None
    assert release.format_problem(2, "cronsync-run") == (
        "release format 2 needs a newer cronsync-run (this one reads format 1)"
    )
    assert "not a cronsync jobs file" in str(release.format_problem(None, "x"))
    assert "not a cronsync jobs file" in str(release.format_problem(True, "x"))


def test_the_shim_starts_without_costly_standard_modules() -> None:
    costly = {"pathlib", "typing", "dataclasses", "subprocess", "selectors", "json"}
    costly |= {"contextlib", "functools", "enum", "re", "warnings", "signal", "collections"}
    costly |= {"socket", "boto3", "botocore", "git", "watchdog"}  # not even a top-level import
    code = "import cronsync.cli.shim, cronsync.run.runner, cronsync.run.steps, cronsync.run.after"
    assert modules_loaded(code, costly) == []


def test_the_aws_modules_import_boto3_only_when_a_client_is_made() -> None:
    """The broker's AWS modules reach boto3 inside functions, not at import time (the
    agent's and the CLI's start-up stay quick; the shim reaches none of them at all)."""
    code = (
        "import cronsync.host.awsclients, cronsync.secrets.fetch, cronsync.secrets.aws, "
        "cronsync.cloud.forward, cronsync.cloud.send, cronsync.cloud.metrics, "
        "cronsync.broker.daemon, cronsync.cli.broker"
    )
    assert modules_loaded(code, {"boto3", "botocore", "git", "watchdog"}) == []


def test_the_shims_new_pending_file_is_the_first_state_delivery_reads() -> None:
    """cloud.spoolstart writes a new run's pending file without cloud.pending (its
    imports cost a shipping run ~30 ms): the two must describe the same state."""
    from cronsync.cloud.pending import Pending
    from cronsync.cloud.spoolstart import fresh_pending

    document = fresh_pending("/var/log/cronsync/j/r.log", "/grp", "h/j/r", 1_700_000_000_000)
    expected = Pending("/var/log/cronsync/j/r.log", "/grp", "h/j/r", created_ms=1_700_000_000_000)
    assert Pending.from_json(document) == expected
    assert document == expected.to_json()


def test_a_shipping_run_starts_without_the_delivery_modules() -> None:
    code = "import cronsync.cloud.spoolstart, cronsync.run.after"
    heavy = {"dataclasses", "typing", "pathlib", "json", "cronsync.cloud.pending"}
    assert modules_loaded(code, heavy) == []
