"""``cronsync doctor``: check, as each job user, what the trust model promises.

The promise: a job user holds no AWS credentials and reaches AWS only through the
broker, which gives it the secrets of its own jobs and nothing else. For each user of
the installed release's jobs (the release the broker itself reads), as that user:

* ``credentials-unreadable``: ``aws.credentials_file`` (when set) cannot be opened for
  reading (opened, never read);
* ``metadata-unreachable``: a TCP connect to ``aws.metadata_endpoint`` fails within
  :data:`PROBE_TIMEOUT` (the nftables guard, ``systemd/cronsync-imds.nft``);
* ``broker-answers``: the broker answers ``ping`` on ``broker.socket`` and sees the
  user's uid;
* ``broker-refuses``: the broker refuses the secrets of a job of another user (of a job
  not in the release when there is none). A value it wrongly serves is counted, never
  shown nor kept: it dies with the child that received it.

And once, as the doctor itself: the installed release, the broker's socket, the
credentials file's owner and mode, and that every job user exists here. Jobs running as
root are trusted (root holds the credentials anyway): nothing to isolate, not checked.

Acting as a user: as root, one child per user is forked; it switches to the user as cron
does (initgroups, setgid, setuid), runs the checks, writes them as JSON to a pipe and
leaves with ``os._exit``; it is killed after :data:`CHILD_TIMEOUT`. It never execs and
imports nothing after the switch (a job user may not be able to read the checkout or
the interpreter's library): everything it uses is imported by this module, and the
metadata endpoint is resolved before the fork. The doctor must be single-threaded when
it forks. Not root: only the current user's checks run (when it is a job user); the
other users' are reported skipped, and skipped is not passed.

Read-only: nothing is written. The text output is the CLI's (``cli/broker.py``).
"""

from __future__ import annotations

import json
import os
import pwd
import select
import signal
import stat
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, Optional

from cronsync.broker.usercheck import (
    FAIL,
    OK,
    SKIP,
    USER_CHECKS,
    Check,
    Probe,
    Targets,
    checks_as_this_process,
    make_targets,
    one_line,
)
from cronsync.core import brokerwire
from cronsync.core.errors import ConfigError, CronsyncError, os_reason
from cronsync.host.config import AgentConfig, config_path, load_config, parse_config
from cronsync.run.jobspec import Release, ShimError, load_release

FORMAT = "cronsync.doctor/1"
CHILD_TIMEOUT = 30.0  # one user's checks, all of them: the child is killed after this
MAX_CHILD_OUTPUT = 1024 * 1024

HOST = ""  # the user of a check the doctor makes once, as itself

RELEASE = "installed-release"
SOCKET = "broker-socket"
CREDENTIALS_FILE = "credentials-file"
USER_EXISTS = "user-exists"
TRUSTED = "trusted"
AS_USER = "as-user"
ABSENT_JOB = "cronsync-doctor-probe"


# --- the config and the release -------------------------------------------------------


def load_doctor_config(explicit: Optional[str]) -> tuple[AgentConfig, Optional[str]]:
    """Read the agent config as :func:`~cronsync.host.config.load_config` does, but
    take a credentials file that is too open as a finding rather than an error.

    Returns:
        The config and why its credentials file is refused (None: it is fine).

    Raises:
        ConfigError: the config is missing, unreadable or invalid.
    """
    try:
        return load_config(explicit), None
    except ConfigError as exc:
        path = config_path(explicit)
        try:
            config = parse_config(path, path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ConfigError):
            raise exc from exc.__cause__
        return config, exc.message  # only the credentials file's own check refused it


def users_and_jobs(release: Release) -> dict[str, tuple[str, ...]]:
    """Return the installed jobs of ``release`` by user: user name -> job names."""
    jobs: dict[str, list[str]] = {}
    for name, job in release.document["jobs"].items():
        user = job.get("user") if isinstance(job, dict) else None
        if isinstance(user, str) and user and job.get("installed"):
            jobs.setdefault(user, []).append(name)
    return {user: tuple(sorted(names)) for user, names in sorted(jobs.items())}


def probe_for(user: str, jobs: Mapping[str, Sequence[str]], every_job: Sequence[str]) -> Probe:
    """Return the job ``user`` asks for to be refused: the first installed job of another
    user, else a name that is not in the release (``every_job``)."""
    for owner, names in jobs.items():
        for name in names:
            if owner != user and brokerwire.is_plain_name(name):
                return Probe(name, owner)
    name, number = ABSENT_JOB, 1
    while name in every_job:
        number += 1
        name = f"{ABSENT_JOB}-{number}"
    return Probe(name, None)


def become(account: pwd.struct_passwd) -> None:
    """Switch this process to ``account`` for good, as cron does (its groups too).

    Raises:
        OSError: the switch failed or did not take.
    """
    os.initgroups(account.pw_name, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    uid, gid = account.pw_uid, account.pw_gid
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError(f"the switch to uid {uid} did not take")


def _child(account: pwd.struct_passwd, targets: Targets, probe: Probe, out: int) -> NoReturn:
    """In the forked child: switch, check, write the checks as JSON to ``out``, exit."""
    code = 1
    try:
        try:
            become(account)
            checks = checks_as_this_process(account.pw_name, targets, probe)
            payload: Any = [check.as_dict() for check in checks]
            code = 0
        except BaseException as exc:  # the parent reports it; never back into the caller
            payload = {"error": one_line(f"{type(exc).__name__}: {exc}")}
        data = json.dumps(payload).encode()
        while data:
            data = data[os.write(out, data) :]
    finally:
        os._exit(code)


def _read_child(descriptor: int, deadline: float) -> Optional[bytes]:
    """Read the child's output until it closes the pipe; None when the deadline (or the
    size limit) comes first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([descriptor], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(descriptor, 65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_CHILD_OUTPUT:
            return None
        chunks.append(chunk)


def _reap(pid: int, deadline: float) -> None:
    """Wait for the child until ``deadline``, then kill it and wait."""
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _parse_child(user: str, data: Optional[bytes], timeout: float) -> list[Check]:
    """Turn the child's output into checks (one failure when it is not what we wrote)."""
    if data is None:
        detail = f"the checks as {user} did not finish within {timeout:g}s (killed)"
        return [Check(user, AS_USER, FAIL, detail)]
    try:
        payload = json.loads(data)
    except ValueError:
        payload = {"error": "no result"}
    try:
        checks = [
            Check(user, str(item["check"]), str(item["status"]), str(item["detail"]))
            for item in payload
        ]
    except (KeyError, TypeError):
        checks = []
    if checks:
        return checks
    error = payload.get("error") if isinstance(payload, dict) else None
    detail = f"the checks as {user} failed: {error or 'no valid result'}"
    return [Check(user, AS_USER, FAIL, one_line(detail))]


def checks_as_user(
    account: pwd.struct_passwd, targets: Targets, probe: Probe, timeout: float = CHILD_TIMEOUT
) -> list[Check]:
    """Run a user's checks in a child that becomes ``account`` (this process is root).

    Raises:
        CronsyncError: this process runs more than one thread (forking it is unsafe).
    """
    if threading.active_count() != 1:
        raise CronsyncError("internal: the doctor must be single-threaded to fork")
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        _child(account, targets, probe, writer)
    os.close(writer)
    deadline = time.monotonic() + timeout
    data: Optional[bytes] = None
    try:
        data = _read_child(reader, deadline)
    finally:
        os.close(reader)
        _reap(pid, deadline if data is not None else 0.0)  # no output in time: kill now
    return _parse_child(account.pw_name, data, timeout)


# --- the whole run --------------------------------------------------------------------


def user_checks(
    user: str, jobs: Mapping[str, Sequence[str]], every_job: Sequence[str], targets: Targets
) -> list[Check]:
    """Return the checks of one job user: made as that user when this process is root
    or that user, skipped otherwise."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        names = ", ".join(jobs[user])
        detail = f"not a user on this host: its jobs ({names}) cannot run"
        return [Check(user, USER_EXISTS, FAIL, detail)]
    if account.pw_uid == 0:
        detail = (
            f"uid 0 is trusted (it holds the AWS credentials); its jobs: {', '.join(jobs[user])}"
        )
        return [Check(user, TRUSTED, OK, f"not checked: {detail}")]
    probe = probe_for(user, jobs, every_job)
    if os.geteuid() == 0:
        return checks_as_user(account, targets, probe)
    if os.geteuid() == account.pw_uid:
        return checks_as_this_process(user, targets, probe)
    why = f"not checked: acting as {user} needs root (run the doctor as root)"
    return [Check(user, name, SKIP, why) for name in USER_CHECKS]


def socket_check(path: str) -> Check:
    """Whether the broker's socket exists and is a socket."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return Check(HOST, SOCKET, FAIL, f"{path}: {os_reason(exc)} (is the broker running?)")
    if not stat.S_ISSOCK(info.st_mode):
        return Check(HOST, SOCKET, FAIL, f"{path} is not a socket")
    return Check(HOST, SOCKET, OK, f"{path} (mode {stat.S_IMODE(info.st_mode):04o})")


def credentials_file_check(path: Optional[str], problem: Optional[str]) -> Check:
    """The credentials file as the agent config's own check judged it."""
    if problem is not None:
        return Check(HOST, CREDENTIALS_FILE, FAIL, one_line(problem))
    if path is None:
        return Check(HOST, CREDENTIALS_FILE, OK, "aws.credentials_file is not set")
    try:
        info = os.stat(path)
    except OSError as exc:
        return Check(HOST, CREDENTIALS_FILE, FAIL, f"{path}: {os_reason(exc)}")
    mode = stat.S_IMODE(info.st_mode)
    return Check(HOST, CREDENTIALS_FILE, OK, f"{path}: owner uid {info.st_uid}, mode {mode:04o}")


def release_check(release: Release, jobs: Mapping[str, Sequence[str]]) -> Check:
    """The installed release the broker decides by, and its job users."""
    count = sum(len(names) for names in jobs.values())
    users = ", ".join(jobs) or "none"
    return Check(HOST, RELEASE, OK, f"{release.name}: {count} installed job(s), users: {users}")


def run_doctor(config: AgentConfig, credentials_problem: Optional[str] = None) -> list[Check]:
    """Run every check (see the module's docstring) and return them in order.

    Args:
        config: the host's agent config.
        credentials_problem: why the credentials file was refused (see
            :func:`load_doctor_config`), or None.

    Raises:
        ConfigError: ``aws.metadata_endpoint`` does not resolve.
        CronsyncError: more than one thread runs (as root, the doctor forks).
    """
    targets = make_targets(config)
    checks = [
        socket_check(targets.socket),
        credentials_file_check(targets.credentials_file, credentials_problem),
    ]
    try:
        release = load_release(config.paths.root)
    except ShimError as exc:
        return [Check(HOST, RELEASE, FAIL, one_line(exc.message)), *checks]
    jobs = users_and_jobs(release)
    every_job = sorted(release.document["jobs"])
    checks.insert(0, release_check(release, jobs))
    for user in jobs:
        checks += user_checks(user, jobs, every_job, targets)
    return checks


# --- the report -----------------------------------------------------------------------


def doctor_ok(checks: Sequence[Check], allow_skipped: bool = False) -> bool:
    """Whether the doctor passes: no check failed, and none was skipped unless
    ``allow_skipped``."""
    allowed = (OK, SKIP) if allow_skipped else (OK,)
    return all(check.status in allowed for check in checks)


def doctor_document(checks: Sequence[Check], allow_skipped: bool = False) -> dict[str, Any]:
    """The ``--json`` document: ``{"format", "ok", "checks": [...]}``."""
    return {
        "format": FORMAT,
        "ok": doctor_ok(checks, allow_skipped),
        "checks": [check.as_dict() for check in checks],
    }
