"""`cronsync logs JOB --json`: a run's output as one JSON document, each line with its
stream and time, read from the same local log (and with the same refusals) as the text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from test_shim import ShimSandbox


@pytest.fixture
def box(tmp_path: Path, git_env: None) -> Iterator[ShimSandbox]:
    yield ShimSandbox(tmp_path)


def cli(box: ShimSandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path)},
    )


def test_logs_json_gives_each_line_with_its_stream_and_time(box: ShimSandbox) -> None:
    box.job(
        "mixed",
        'schedule = "* * * * *"\n'
        "shell = \"echo first; echo oops >&2; printf 'caf\\\\303\\\\251\\\\n'; "
        "printf 'bad \\\\377 byte\\\\n'; exit 3\"\n",
    )
    box.sync()
    box.run("mixed")
    run_id = box.last("mixed")["run_id"]
    box.run("mixed")

    done = cli(box, "logs", "mixed", "--run", run_id, "--json")

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["format"] == "cronsync.logs/1"
    assert (document["job"], document["run_id"]) == ("mixed", run_id)
    lines = [(line["stream"], line["text"]) for line in document["lines"]]
    assert ("stdout", "first") in lines and ("stderr", "oops") in lines
    assert ("stdout", "café") in lines
    assert ("stdout", "bad \ufffd byte") in lines  # not UTF-8: replaced, never dropped
    assert lines[-1][0] == "cronsync" and "exit 3" in lines[-1][1]
    for line in document["lines"]:
        assert datetime.fromisoformat(line["time"]).tzinfo is not None
    text = subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "logs", "mixed", "--run", run_id],
        capture_output=True,
        timeout=60,
        env={**os.environ, "CRONSYNC_CONFIG": str(box.config_path)},
    ).stdout
    assert text.count(b"\n") == len(lines)  # the same lines as the text output

    last = json.loads(cli(box, "logs", "mixed", "--json").stdout)
    assert last["run_id"] != run_id  # the newest run by default


def test_logs_json_errors_are_error_documents(box: ShimSandbox) -> None:
    box.job("quiet", 'schedule = "* * * * *"\nshell = "true"\n')
    box.sync()

    none_yet = cli(box, "logs", "quiet", "--json")
    assert none_yet.returncode == 1
    assert json.loads(none_yet.stdout)["format"] == "cronsync.error/1"
    assert "no log recorded for quiet" in none_yet.stderr

    both = cli(box, "logs", "quiet", "--json", "--raw")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    assert json.loads(both.stdout)["exit_code"] == 2


def test_a_marker_time_no_clock_can_show_is_null(tmp_path: Path) -> None:
    import io

    from cronsync.cli.logjson import write_log_json

    log = tmp_path / "run.log"  # a log its job user rewrote: any digits in a marker
    log.write_bytes(b"\x1fo 99999999999999999999999\nlate\n\x1fe 1700000000000\nok\n")
    out = io.BytesIO()
    fd = os.open(log, os.O_RDONLY)
    try:
        write_log_json(fd, out, "job", "run")
    finally:
        os.close(fd)
    lines = json.loads(out.getvalue())["lines"]
    assert [(line["text"], line["time"]) for line in lines] == [
        ("late", None),
        ("ok", "2023-11-14T22:13:20.000+00:00"),
    ]
