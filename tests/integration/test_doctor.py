"""``cronsync doctor`` against real Unix users, a real broker socket and real TCP on
127.0.0.1.

As root, each test creates two job users (``useradd``, removed afterwards), syncs a
jobs repository whose jobs run as them into a sandbox every user can traverse, serves
the broker in this process, and runs ``python -m cronsync.cli.main doctor`` as root: it
forks a child per job user that becomes the user. The metadata service the doctor
probes is always a port on 127.0.0.1 (closed, or a listener of the test): no test sends
anything to 169.254.169.254 or off this machine. The AWS endpoint is a closed port on
127.0.0.1 too; no test needs it (the broker refuses before it would fetch).

Not root, a job user runs the doctor itself: its own checks run, the other users' are
skipped. The interpreter's library is root's only here (/root is 0700), so that run
imports the CLI as root and switches users in the same process before ``main``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from cronsync.broker import doctor as doctor_module
from cronsync.broker import usercheck
from cronsync.core import brokerwire
from cronsync.files.sockaddr import unix_address
from helpers.awsbox import AwsShimSandbox, aws_box
from helpers.users import fresh_user_name

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: job users are real users (useradd)")
USER_CHECKS = ("credentials-unreadable", "metadata-unreachable", "broker-answers", "broker-refuses")
LEAKED = "leaked-Value-5e1f9a"  # what a wrongly serving broker hands out

# Runs the doctor as another user, who cannot read the interpreter's library here: the
# CLI is imported (its parser built, which imports every verb) as root, and what the
# verb imports late too (getaddrinfo encodes a host name with the idna codec; the
# credentials file is parsed with configparser).
AS_USER = """\
import os, sys, tomllib, encodings.idna, configparser
from cronsync.cli.main import build_parser, main
build_parser()
import cronsync.broker.doctor, cronsync.cli.jsonout
name = sys.argv[1]
user = __import__("pwd").getpwnam(name)
os.initgroups(name, user.pw_gid)
os.setgid(user.pw_gid)
os.setuid(user.pw_uid)
sys.exit(main(sys.argv[2:]))
"""


# --- users, ports, the sandbox ------------------------------------------------------


def add_user() -> str:
    name = fresh_user_name("csdoc-")
    subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
         "/usr/sbin/nologin", "--user-group", name],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return name


def remove_user(name: str) -> None:
    subprocess.run(["userdel", "-r", name], capture_output=True, timeout=60, check=False)
    with pytest.raises(KeyError):
        pwd.getpwnam(name)


@pytest.fixture
def users() -> Iterator[tuple[str, str]]:
    """Two job users made for this test (root only)."""
    if not ROOT:
        pytest.skip("needs root: job users are real users (useradd)")
    made: list[str] = []
    try:
        made += [add_user(), add_user()]
        yield made[0], made[1]
    finally:
        for name in made:
            remove_user(name)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def tcp_listener() -> Iterator[int]:
    """A listener on 127.0.0.1 (the kernel completes connections into its backlog)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@pytest.fixture(autouse=True)
def no_metadata_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker served in this process must never look for the instance role."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def box(git_env: None) -> Iterator[AwsShimSandbox]:
    """A sandbox every user can traverse (pytest's tmp_path is root's only)."""
    base = Path(tempfile.mkdtemp(prefix="cronsync-doctor-"))
    base.chmod(0o755)
    try:
        with aws_box(base) as sandbox:
            yield sandbox
    finally:
        shutil.rmtree(base, ignore_errors=True)


def user_job(box: AwsShimSandbox, name: str, user: str) -> None:
    """A job running as ``user`` with one AWS secret (``user`` named in users.allowed)."""
    box.users.add(user)
    box.upstream.write(
        f"jobs/{name}.toml",
        f'description = "test job {name}"\nowner = "tests@example.com"\nuser = "{user}"\n'
        f'schedule = "* * * * *"\nshell = "true"\n[secrets]\nTOKEN = "batch/{name}"\n',
    )


def synced(box: AwsShimSandbox, jobs: dict[str, str], metadata_port: int) -> None:
    """Sync ``jobs`` (name -> user); the metadata service the doctor probes is
    127.0.0.1:``metadata_port``, AWS itself a closed port on 127.0.0.1."""
    for name, user in jobs.items():
        user_job(box, name, user)
    box.sync(f"http://127.0.0.1:{free_port()}", logs=False)
    set_metadata_port(box, metadata_port)


def set_metadata_port(box: AwsShimSandbox, port: int) -> None:
    """Point ``aws.metadata_endpoint`` at 127.0.0.1:``port`` ([aws] is the last table)."""
    lines = box.config_path.read_text().splitlines()
    lines = [line for line in lines if not line.startswith("metadata_endpoint")]
    lines.append(f'metadata_endpoint = "127.0.0.1:{port}"')
    box.config_path.write_text("\n".join(lines) + "\n")


def doctor(
    box: AwsShimSandbox, *args: str, as_user: Optional[str] = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cronsync doctor ARGS`` (as root, or as ``as_user`` when given)."""
    command = [sys.executable, "-m", "cronsync.cli.main", "doctor", *args]
    if as_user is not None:
        command = [sys.executable, "-c", AS_USER, as_user, "doctor", *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=box.env(CRONSYNC_CONFIG=str(box.config_path)),
        cwd="/",
        timeout=180,
    )


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(done.stdout)
    assert document["format"] == "cronsync.doctor/1", document
    return document


def statuses(document: dict[str, Any], user: str) -> dict[str, str]:
    """check -> status of ``user``'s checks."""
    return {c["check"]: c["status"] for c in document["checks"] if c["user"] == user}


def detail(document: dict[str, Any], user: str, check: str) -> str:
    (found,) = [c for c in document["checks"] if (c["user"], c["check"]) == (user, check)]
    text: str = found["detail"]
    return text


def all_ok(*checks: str) -> dict[str, str]:
    return dict.fromkeys(checks, "ok")


HOST_CHECKS = ("installed-release", "broker-socket", "credentials-file")


# --- as root ------------------------------------------------------------------------


@needs_root
def test_doctor_passes_on_a_host_that_keeps_aws_from_its_job_users(
    box: AwsShimSandbox, users: tuple[str, str]
) -> None:
    alice, bob = users
    synced(box, {"alpha": alice, "beta": bob}, free_port())
    box.start_broker()

    done = doctor(box, "--json")

    assert done.returncode == 0, done
    document = report(done)
    assert document["ok"] is True
    assert statuses(document, "") == all_ok(*HOST_CHECKS)
    for user in users:
        assert statuses(document, user) == all_ok(*USER_CHECKS), document
    uid = pwd.getpwnam(alice).pw_uid
    assert f"uid {uid}" in detail(document, alice, "broker-answers")
    # each asked for the other's job and was refused; the broker logged both
    assert "job 'beta' (runs as " + bob in detail(document, alice, "broker-refuses")
    assert "job 'alpha' (runs as " + alice in detail(document, bob, "broker-refuses")
    assert "Permission denied" in detail(document, alice, "credentials-unreadable")
    assert "refused" in detail(document, bob, "metadata-unreachable").lower()
    assert sum("refused secrets of job" in line for line in box.broker_log) == 2

    text = doctor(box)
    assert text.returncode == 0, text
    lines = text.stdout.splitlines()
    assert len(lines) == len(document["checks"]) + 1
    assert all(line.startswith("ok  ") for line in lines[:-1]), text.stdout
    assert lines[-1].startswith("doctor: ok (11 ok, 0 failed, 0 skipped)"), lines[-1]


@needs_root
def test_the_doctor_forks_single_threaded_without_boto3(
    box: AwsShimSandbox, users: tuple[str, str]
) -> None:
    synced(box, {"alpha": users[0], "beta": users[1]}, free_port())
    box.start_broker()
    script = (
        "import sys, threading\nfrom cronsync.cli.main import main\n"
        "code = main(['doctor', '--json'])\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules, threading.active_count(),"
        " file=sys.stderr)\nsys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=box.env(CRONSYNC_CONFIG=str(box.config_path)),
        timeout=180,
    )
    assert done.returncode == 0, done
    assert done.stderr.splitlines()[-1] == "False False 1"


@needs_root
def test_doctor_fails_when_job_users_reach_the_metadata_service(
    box: AwsShimSandbox, users: tuple[str, str]
) -> None:
    with tcp_listener() as port:
        synced(box, {"alpha": users[0], "beta": users[1]}, port)
        box.start_broker()

        done = doctor(box, "--json")

    assert done.returncode == 1, done
    document = report(done)
    assert document["ok"] is False
    for user in users:
        expected = {**all_ok(*USER_CHECKS), "metadata-unreachable": "fail"}
        assert statuses(document, user) == expected, document
        assert f"127.0.0.1:{port}" in detail(document, user, "metadata-unreachable")


@needs_root
def test_doctor_fails_when_the_broker_is_not_running(
    box: AwsShimSandbox, users: tuple[str, str]
) -> None:
    synced(box, {"alpha": users[0], "beta": users[1]}, free_port())

    done = doctor(box, "--json")

    assert done.returncode == 1, done
    document = report(done)
    assert statuses(document, "")["broker-socket"] == "fail"
    for user in users:
        assert statuses(document, user) == {
            "credentials-unreadable": "ok",
            "metadata-unreachable": "ok",
            "broker-answers": "fail",
            "broker-refuses": "fail",
        }, document
        assert "no broker at" in detail(document, user, "broker-answers")
    text = doctor(box)
    assert text.returncode == 1
    assert text.stdout.splitlines()[-1].startswith("doctor: FAILED"), text.stdout


class ServingBroker:
    """A broker that wrongly serves every request, values included: a socket of the
    test's own at ``broker.socket``, answering ping as the real one does."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with unix_address(str(path)) as where:
            self.sock.bind(where.address)
        path.chmod(0o666)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                self.answer(conn)

    def answer(self, conn: socket.socket) -> None:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", raw)
        conn.settimeout(10)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        request = brokerwire.decode(data)
        if request.get("op") == brokerwire.PING:
            reply = brokerwire.success(version="fake", uid=uid)
        else:
            reply = brokerwire.success(values={"TOKEN": LEAKED})
        conn.sendall(brokerwire.encode(reply))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.sock.close()


@needs_root
def test_doctor_reports_a_broker_that_serves_another_users_secrets_without_the_value(
    box: AwsShimSandbox, users: tuple[str, str]
) -> None:
    synced(box, {"alpha": users[0], "beta": users[1]}, free_port())
    fake = ServingBroker(box.socket)
    try:
        as_json = doctor(box, "--json")
        as_text = doctor(box)
    finally:
        fake.stop()

    for done in (as_json, as_text):
        assert done.returncode == 1, done
        assert LEAKED not in done.stdout + done.stderr, "the doctor showed a served value"
    document = report(as_json)
    for user in users:
        expected = {**all_ok(*USER_CHECKS), "broker-refuses": "fail"}
        assert statuses(document, user) == expected, document
        assert "SERVED" in detail(document, user, "broker-refuses")
        assert "1 value(s), not shown" in detail(document, user, "broker-refuses")


@needs_root
def test_doctor_fails_when_a_job_users_group_can_read_the_credentials_file(
    box: AwsShimSandbox, users: tuple[str, str]
) -> None:
    alice, bob = users
    synced(box, {"alpha": alice, "beta": bob}, free_port())
    box.start_broker()
    os.chown(box.credentials, 0, pwd.getpwnam(alice).pw_gid)  # alice's group, as cron gives it
    box.credentials.chmod(0o640)

    done = doctor(box, "--json")

    assert done.returncode == 1, done
    document = report(done)
    assert statuses(document, "")["credentials-file"] == "fail"
    assert "mode 0640" in detail(document, "", "credentials-file")
    assert statuses(document, alice) == {**all_ok(*USER_CHECKS), "credentials-unreadable": "fail"}
    assert statuses(document, bob) == all_ok(*USER_CHECKS), document
    assert "can open" in detail(document, alice, "credentials-unreadable")


@needs_root
def test_doctor_reports_a_job_user_that_does_not_exist(
    box: AwsShimSandbox, users: tuple[str, str]
) -> None:
    ghost = f"csdoc-gone-{secrets.token_hex(3)}"
    synced(box, {"alpha": users[0], "ghost": ghost}, free_port())
    box.start_broker()

    done = doctor(box, "--json")

    assert done.returncode == 1, done
    document = report(done)
    assert statuses(document, ghost) == {"user-exists": "fail"}
    assert "ghost" in detail(document, ghost, "user-exists")
    # alice asks for the ghost's job: refused (its user is not a user here)
    assert statuses(document, users[0]) == all_ok(*USER_CHECKS), document


@needs_root
def test_a_user_check_that_hangs_is_killed_and_reported(users: tuple[str, str]) -> None:
    base = Path(tempfile.mkdtemp(prefix="cronsync-doctor-"))
    base.chmod(0o755)
    path = base / "broker.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
            silent.bind(str(path))  # a broker that takes connections and never answers
            path.chmod(0o666)
            silent.listen(16)
            port = free_port()
            targets = usercheck.Targets(
                None, f"127.0.0.1:{port}", (socket.AF_INET, ("127.0.0.1", port)), str(path)
            )
            probe = usercheck.Probe("beta", users[1])

            checks = doctor_module.checks_as_user(pwd.getpwnam(users[0]), targets, probe, 0.5)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    (check,) = checks
    assert (check.user, check.check, check.status) == (users[0], "as-user", "fail")
    assert "did not finish within 0.5s (killed)" in check.detail


# --- not root -----------------------------------------------------------------------


@pytest.fixture
def runner_and_other(box: AwsShimSandbox) -> Iterator[tuple[str, str]]:
    """(the user who runs the doctor, another job user): two new users as root, this
    user and ``daemon`` otherwise."""
    if not ROOT:
        yield box.user, "daemon"
        return
    made = [add_user(), add_user()]
    try:
        yield made[0], made[1]
    finally:
        for name in made:
            remove_user(name)


def test_a_job_user_checks_only_itself_and_the_others_are_skipped(
    box: AwsShimSandbox, runner_and_other: tuple[str, str]
) -> None:
    me, other = runner_and_other
    synced(box, {"mine": me, "theirs": other}, free_port())
    if not ROOT:  # the sandbox's credentials file is this user's own: closed to it too
        box.credentials.chmod(0)
    box.start_broker()
    as_user = me if ROOT else None

    done = doctor(box, "--json", as_user=as_user)

    assert done.returncode == 1, done  # skipped is not passed
    document = report(done)
    assert document["ok"] is False
    assert statuses(document, me) == all_ok(*USER_CHECKS), document
    assert statuses(document, other) == dict.fromkeys(USER_CHECKS, "skip")
    assert "needs root" in detail(document, other, "broker-answers")
    assert "job 'theirs' (runs as " + other in detail(document, me, "broker-refuses")

    text = doctor(box, as_user=as_user)
    assert text.returncode == 1, text
    assert "NOT PROVEN" in text.stdout.splitlines()[-1]
    assert sum(line.startswith("skip  ") for line in text.stdout.splitlines()) == 4

    allowed = doctor(box, "--json", "--allow-skipped", as_user=as_user)
    assert allowed.returncode == 0, allowed
    assert report(allowed)["ok"] is True
