"""The broker's promise: a job user obtains only the secrets of the jobs that run as
that user, and nothing else from AWS; anything else is refused and logged.

Real things throughout: Unix users made for the test (as root; skipped otherwise with
the reason), the broker on a real Unix socket (served in this process, or as its own
``cronsync broker`` process where it is killed), Secrets Manager through moto's HTTP
server on 127.0.0.1, callers that become those users in a forked child and ask over the
socket as the shim does (the kernel, not the request, says who they are).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronsync.core import brokerwire
from cronsync.host.logline import WARNING
from cronsync.run.broker import ask
from helpers.awsbox import AwsShimSandbox, aws_box, client, wait_for
from helpers.hanging import HangingEndpoint
from helpers.loglines import journal_line, log_line
from helpers.users import HAS_USERADD, IS_ROOT, as_user, open_dir, temporary_users

needs_users = pytest.mark.skipif(
    not (IS_ROOT and HAS_USERADD),
    reason="needs root and useradd: the tests make real users and become them",
)
VALUES = {"alpha": "alpha-S3cret-51ae", "beta": "beta-S3cret-9c07"}


@pytest.fixture
def two_users() -> Iterator[list[pwd.struct_passwd]]:
    with temporary_users(2) as users:
        yield users


@pytest.fixture
def shared_box(git_env: None) -> Iterator[AwsShimSandbox]:
    """A sandbox in a folder every user can traverse, its broker stopped at the end."""
    with open_dir("cronsync-broker-") as base, aws_box(base) as box:
        yield box


def ask_secrets(box: AwsShimSandbox, job: str) -> dict[str, Any]:
    """Ask the broker for ``job``'s secrets, as the shim does (from whoever calls)."""
    return ask(str(box.socket), brokerwire.request(brokerwire.SECRETS, job), 30.0)


def two_user_jobs(
    box: AwsShimSandbox, endpoint: str, users: list[pwd.struct_passwd]
) -> tuple[pwd.struct_passwd, pwd.struct_passwd]:
    """Job ``alpha`` runs as the first user, ``beta`` as the second, each with a secret."""
    sm = client(endpoint, "secretsmanager")
    for job, user in zip(("alpha", "beta"), users):
        sm.create_secret(Name=f"{job}/token", SecretString=VALUES[job])
        box.job(job, f'shell = "true"\n[secrets]\nTOKEN = "{job}/token"\n', user=user.pw_name)
    box.sync(endpoint)
    box.start_broker()
    return users[0], users[1]


@needs_users
def test_each_user_gets_its_own_jobs_secrets_and_nothing_else(
    shared_box: AwsShimSandbox, endpoint: str, two_users: list[pwd.struct_passwd]
) -> None:
    box = shared_box
    alpha_user, beta_user = two_user_jobs(box, endpoint, two_users)

    own = as_user(alpha_user, lambda: ask_secrets(box, "alpha"))
    other = as_user(alpha_user, lambda: ask_secrets(box, "beta"))
    reverse = as_user(beta_user, lambda: ask_secrets(box, "alpha"))
    forged = as_user(alpha_user, lambda: ask_secrets(box, "no-such-job"))
    bad_name = as_user(alpha_user, lambda: ask_secrets(box, "../beta"))

    assert own == {"ok": True, "values": {"TOKEN": VALUES["alpha"]}}
    for refused in (other, reverse, forged):
        assert refused["ok"] is False and refused["kind"] == "refused", refused
        assert "values" not in refused
    assert bad_name["ok"] is False and bad_name["kind"] == "bad-request", bad_name
    assert (
        f"runs as {beta_user.pw_name} (uid {beta_user.pw_uid}), not uid {alpha_user.pw_uid}"
        in (other["error"])
    )
    assert "no job 'no-such-job'" in forged["error"]
    replies = json.dumps([own, other, reverse, forged])
    assert VALUES["beta"] not in replies.replace(json.dumps(own), "")
    # every refusal is logged with the job, the caller's uid and why; no value is
    refusals = [line for line in box.broker_log if line.startswith("refused")]
    assert len(refusals) == 3, box.broker_log
    assert refusals == [m for m in box.broker_log.at(WARNING) if m.startswith("refused")]
    assert any(f"'beta' to uid {alpha_user.pw_uid}" in line for line in refusals)
    assert any(f"'alpha' to uid {beta_user.pw_uid}" in line for line in refusals)
    log = "\n".join(box.broker_log)
    assert VALUES["alpha"] not in log and VALUES["beta"] not in log


@needs_users
def test_a_job_removed_from_the_installed_release_is_refused(
    shared_box: AwsShimSandbox, endpoint: str, two_users: list[pwd.struct_passwd]
) -> None:
    box = shared_box
    alpha_user, _ = two_user_jobs(box, endpoint, two_users)
    assert as_user(alpha_user, lambda: ask_secrets(box, "alpha"))["ok"] is True

    box.upstream.remove("jobs/alpha.toml")
    box.sync(endpoint)  # the broker reads the new release at the next request

    after = as_user(alpha_user, lambda: ask_secrets(box, "alpha"))
    assert after["ok"] is False and after["kind"] == "refused", after
    assert "no job 'alpha' in the installed release" in after["error"]


@needs_users
def test_a_disabled_job_gets_no_secrets(
    shared_box: AwsShimSandbox, endpoint: str, two_users: list[pwd.struct_passwd]
) -> None:
    box = shared_box
    alpha_user, _ = two_user_jobs(box, endpoint, two_users)
    box.job(
        "alpha",
        'shell = "true"\nenabled = false\nreason = "retired"\n[secrets]\nTOKEN = "alpha/token"\n',
        user=alpha_user.pw_name,
    )
    box.sync(endpoint)

    after = as_user(alpha_user, lambda: ask_secrets(box, "alpha"))
    assert after["ok"] is False and "not installed on this host" in after["error"], after


@needs_users
def test_the_real_shim_as_a_job_user_gets_its_secret_through_the_broker(
    shared_box: AwsShimSandbox, endpoint: str, two_users: list[pwd.struct_passwd]
) -> None:
    """The shim's run, as the job's user, in a forked child: no AWS credentials exist for
    it (the credentials file is root's, 0600), yet its job sees its secret."""
    from cronsync.run.context import RunOptions
    from cronsync.run.runner import run_job

    box = shared_box
    alpha_user, _ = two_user_jobs(box, endpoint, two_users)
    credentials = str(box.credentials)
    box.job(
        "alpha",
        'shell = "echo token=$TOKEN; test -n \\"$TOKEN\\""\n[secrets]\nTOKEN = "alpha/token"\n',
        user=alpha_user.pw_name,
    )
    box.sync(endpoint)

    def run_as_job_user() -> dict[str, Any]:
        try:
            open(credentials).close()
            readable = True
        except PermissionError:
            readable = False
        with open(os.devnull, "w") as quiet:
            code = run_job("alpha", RunOptions(root=box.root, stderr=quiet))
        return {"credentials_readable": readable, "code": code}

    result = as_user(alpha_user, run_as_job_user)

    assert result == {"credentials_readable": False, "code": 0}
    record = box.last("alpha")
    assert record["user"] == alpha_user.pw_name and record["status"] == "succeeded", record
    log = box.log_bytes(record)
    assert b"token=***" in log and VALUES["alpha"].encode() not in log


def test_a_broker_killed_mid_request_stops_the_job(
    git_env: None, tmp_path: Path, endpoint: str
) -> None:
    """The broker dies while it waits for AWS (an endpoint that never answers): the shim
    does not start the job, exits 126 and its record says why."""
    hanging = HangingEndpoint()
    try:
        with aws_box(tmp_path) as box:
            marker = tmp_path / "started"
            box.job("needs", f'shell = "touch {marker}"\n[secrets]\nTOKEN = "needs/token"\n')
            box.sync(hanging.url)
            broker = subprocess.Popen(
                [sys.executable, "-m", "cronsync.cli.main", "broker", "--config", box.config_path],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=box.env(),
            )
            try:
                wait_for(box.socket.exists, "the broker's socket")
                shim = subprocess.Popen(
                    [sys.executable, "-m", "cronsync.cli.shim", "--root", str(box.root), "needs"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=box.env(),
                )
                wait_for(lambda: hanging.accepted, "the broker's call to AWS")
                broker.send_signal(signal.SIGKILL)
                out, err = shim.communicate(timeout=60)
            finally:
                broker.kill()
                broker.wait(timeout=60)
            assert shim.returncode == 126, (out, err)
            assert not marker.exists()
            record = box.last("needs")
            assert record["status"] == "error", record
            assert "gave no valid reply" in record["reason"], record
            assert "Traceback" not in err
    finally:
        hanging.stop()


def test_a_credentials_file_others_can_read_is_refused(
    git_env: None, tmp_path: Path, endpoint: str
) -> None:
    with aws_box(tmp_path) as box:
        box.job("plain", 'shell = "true"\n')
        box.sync(endpoint)
        box.credentials.chmod(0o640)

        done = subprocess.run(
            [sys.executable, "-m", "cronsync.cli.main", "broker", "--config", box.config_path],
            capture_output=True,
            text=True,
            env=box.env(),
            timeout=60,
        )

    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "aws.credentials_file" in lines[0] and "mode 0640" in lines[0]
    assert "chmod 600" in lines[0]


def test_a_second_broker_on_the_same_socket_is_refused(
    git_env: None, tmp_path: Path, endpoint: str
) -> None:
    with aws_box(tmp_path) as box:
        box.job("plain", 'shell = "true"\n')
        box.sync(endpoint)
        box.start_broker()

        done = subprocess.run(
            [sys.executable, "-m", "cronsync.cli.main", "broker", "--config", box.config_path],
            capture_output=True,
            text=True,
            env=box.env(),
            timeout=60,
        )
        still = ask(str(box.socket), brokerwire.request(brokerwire.PING), 10.0)

    assert done.returncode != 0 and "another broker already answers" in done.stderr, done
    assert "Traceback" not in done.stderr
    assert still["ok"] is True  # the first one is untouched


@pytest.mark.parametrize("journal", [True, False], ids=["journald", "file"])
def test_the_broker_process_logs_each_line_with_its_level(
    git_env: None, tmp_path: Path, endpoint: str, journal: bool
) -> None:
    """``cronsync broker`` on stderr: ``<N>`` prefixes when systemd's $JOURNAL_STREAM
    names that stream, a timestamp and a level word otherwise."""
    with aws_box(tmp_path) as box:
        box.job("plain", 'shell = "true"\n')
        box.sync(endpoint)
        env = {k: v for k, v in box.env().items() if k != "JOURNAL_STREAM"}
        err_path = tmp_path / "broker.err"
        with err_path.open("wb") as err:
            if journal:
                info = os.fstat(err.fileno())
                env["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
            broker = subprocess.Popen(
                [sys.executable, "-m", "cronsync.cli.main", "broker", "--config", box.config_path],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        try:
            wait_for(box.socket.exists, "the broker's socket")
            refused = ask(str(box.socket), brokerwire.request(brokerwire.SECRETS, "nosuch"), 30.0)
            assert refused["kind"] == "refused", refused
        finally:
            broker.send_signal(signal.SIGTERM)
            assert broker.wait(timeout=60) == 0
        text = err_path.read_text()

    line = journal_line if journal else log_line
    assert re.search(line("cronsync broker", "listening on "), text, re.M), text
    said = r"refused secrets of job 'nosuch' to uid \d+ \(pid \d+\): no job 'nosuch'"
    assert re.search(line("cronsync broker", said, "warning"), text, re.M), text
    assert len(re.findall("^<" if journal else "^[0-9]", text, re.M)) == len(text.splitlines())


def test_a_stale_socket_is_replaced_and_removed_at_the_end(
    git_env: None, tmp_path: Path, endpoint: str
) -> None:
    import socket

    from cronsync.files.sockaddr import unix_address

    with aws_box(tmp_path) as box:
        box.job("plain", 'shell = "true"\n')
        box.sync(endpoint)
        box.socket.parent.mkdir(parents=True, exist_ok=True)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with unix_address(str(box.socket)) as where:
            stale.bind(where.address)
        stale.close()  # the file stays, nobody listens: what a killed broker leaves

        box.start_broker()
        assert ask(str(box.socket), brokerwire.request(brokerwire.PING), 10.0)["ok"] is True
        assert (box.socket.stat().st_mode & 0o777) == 0o666
        box.stop_broker()

        assert not box.socket.exists()  # stop removes it before returning


@needs_users
def test_one_user_holding_connections_does_not_starve_another(
    shared_box: AwsShimSandbox, endpoint: str, two_users: list[pwd.struct_passwd]
) -> None:
    """Connections that never send a request take at most MAX_PER_UID of the broker's
    slots, each for READ_TIMEOUT: more of them get an immediate ``busy``, and another
    user is answered meanwhile."""
    import socket

    from cronsync.broker.listener import MAX_PER_UID
    from cronsync.files.sockaddr import unix_address

    box = shared_box
    alpha_user, _ = two_user_jobs(box, endpoint, two_users)
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_PER_UID + 8):  # as root: silent, they hold their slots
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(10.0)
            with unix_address(str(box.socket)) as where:
                conn.connect(where.address)
            held.append(conn)
        # the extra ones were told at once that the broker is busy (for this uid)
        late = held[-1].recv(4096)
        assert b'"busy"' in late, late

        answer = as_user(alpha_user, lambda: ask_secrets(box, "alpha"))

        assert answer == {"ok": True, "values": {"TOKEN": VALUES["alpha"]}}
    finally:
        for conn in held:
            conn.close()
