"""No text committed as a job file makes a sync crash: it installs or it refuses.

Hypothesis writes arbitrary (and TOML-shaped) text into a job file, commits and pushes
it; every sync must end as ``installed`` or ``refused`` with located errors, and a
refused commit must leave the last-known-good cron file byte for byte.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.sandbox import Sandbox, make_sandbox

FRAGMENTS = st.sampled_from(
    [
        'description = "x"\n',
        'owner = "o"\n',
        'schedule = "',
        "* * * * *",
        '"\n',
        'command = ["scripts/nightly-aggregate.sh"]\n',
        'shell = "true"\n',
        "[success]\n",
        'within = "1h"\n',
        "[secrets]\n",
        'A = "name"\n',
        "[env]\n",
        "\r\n",
        "\x00",
        "%",
        'user = "root evil"\n',
        'timezone = "Mars/Olympus"\n',
        "enabled = false\n",
        "= ",
        "[[",
        '"""',
        "\n",
        "0 0 31 2 *",
        "mon-sun",
        "*/0",
        "@reboot",
    ]
)
JOB_TEXT = st.one_of(st.text(max_size=200), st.lists(FRAGMENTS, max_size=25).map("".join))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=JOB_TEXT)
def test_any_job_text_installs_or_is_refused(git_env: None, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sandbox: Sandbox = make_sandbox(Path(tmp))
        assert sandbox.sync().record.result == "installed"
        good = sandbox.cron_file.read_bytes()
        sandbox.upstream.write("jobs/fuzzed.toml", text)
        sandbox.upstream.commit_and_push("fuzz")

        outcome = sandbox.sync()

        assert outcome.record.result in ("installed", "refused"), outcome.record
        if outcome.record.result == "refused":
            assert outcome.record.errors
            assert all(error["file"] and error["message"] for error in outcome.record.errors)
            assert sandbox.cron_file.read_bytes() == good
        else:
            assert sandbox.cron_file.read_bytes().endswith(b"\n")
