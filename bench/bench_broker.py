"""Benchmark: the broker under 200 concurrent job starts of 20 real users (issue 9).

Creates 20 Unix users (``csbench01``..``csbench20``, comment ``cronsync bench``, no
home; removed at the end, also on failure or Ctrl-C) and a host sandbox in a
``mkdtemp`` folder under /tmp (0755: the users traverse it) whose release has 10 jobs
per user, each with two Secrets Manager secrets of its own (a plain one and a JSON key,
random values) in moto on 127.0.0.1. cronsync is installed as a host installs it (a
``python3 -m venv`` of the system interpreter: readable by every user), and its broker
runs in its own process (``python -m cronsync.cli.main broker --config ...``), as root.

Two kinds of job start, each a round of 200 started at the same instant (they block on
one pipe that is then closed), several rounds:

* **shims** — the real thing: each job's ``cronsync-run`` run as the job's user; the job
  itself checks that ``$TOKEN`` and ``$DB_PASSWORD`` are exactly its own values (the
  expected values are in a file only that user can read) and exits 3 otherwise. Latency:
  from the release to the shim's exit (the whole run of a job that does next to
  nothing).
* **clients** — processes forked from this one that drop to the job's uid (setgroups,
  setgid, setuid) and speak the wire protocol themselves: a request for their own job
  (must be answered with exactly its values) then one for a job of the next user (must
  be refused). Latency: from connect to the reply, the broker's own share.

Reported: latency p50/p95 (and their ratio to the same start made alone, measured in
the same run), refusals of legitimate requests (must be 0, from the replies and the
broker's log), values crossing users (must be 0), other users' jobs refused (must be
all), and the broker's peak RSS (VmHWM, < 80 MiB).

Not a test: ``python bench/bench_broker.py [--quick]`` as root (``--quick``: fewer
rounds). The table (stdout) is markdown for the README; progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from benchkit import (
    BrokerProcess,
    Context,
    Host,
    Moto,
    Table,
    aws_toml,
    build_wheel,
    cpu_seconds,
    credentials_file,
    host_interpreter,
    job_toml,
    make_upstream,
    make_venv,
    percentile,
    pip_version,
    run_quiet,
    say,
)
from cronsync.core import brokerwire
from cronsync.run.broker import BrokerUnreachable, ask

USERS = 20
JOBS_PER_USER = 10
PREFIX = "csbench"
COMMENT = "cronsync bench"
RSS_LIMIT_MIB = 80
# The job's own check: its two secrets are exactly its values (kept in a file only its
# user reads, not in the repository), else exit 3.
CHECK = 'test "$TOKEN:$DB_PASSWORD" = "$(cat {expect})" || exit 3'
VALUE_OWNER: dict[str, str] = {}  # every secret value -> its job's user (clients check)


@dataclass(frozen=True)
class Job:
    name: str
    user: str
    uid: int
    gid: int
    token: str
    password: str

    @property
    def values(self) -> dict[str, str]:
        return {"TOKEN": self.token, "DB_PASSWORD": self.password}


# --- users ---------------------------------------------------------------------------


def user_names() -> list[str]:
    return [f"{PREFIX}{n:02d}" for n in range(1, USERS + 1)]


def remove_users() -> list[str]:
    """Remove the benchmark's users (only those carrying its comment); return the names
    that could not be removed."""
    failed = []
    for name in user_names():
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_gecos != COMMENT:
            failed.append(f"{name} (not ours: left alone)")
            continue
        done = subprocess.run(["userdel", name], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            failed.append(f"{name}: {done.stderr.strip()}")
    return failed


def create_users() -> None:
    leftovers = remove_users()
    if leftovers:
        sys.exit(f"users in the way: {', '.join(leftovers)}")
    for name in user_names():
        run_quiet(["useradd", "-M", "-s", "/usr/sbin/nologin", "-c", COMMENT, name])


# --- the host ------------------------------------------------------------------------


def make_jobs(base: Path, moto: Moto) -> list[Job]:
    """The 200 jobs: their secrets in moto, their expected values in files only their
    user can read."""
    client = moto.client("secretsmanager")
    expect = base / "expect"
    expect.mkdir(mode=0o755)
    jobs = []
    for u, user in enumerate(user_names(), start=1):
        entry = pwd.getpwnam(user)
        for j in range(1, JOBS_PER_USER + 1):
            name = f"u{u:02d}-j{j:02d}"
            job = Job(
                name,
                user,
                entry.pw_uid,
                entry.pw_gid,
                f"tok-{name}-{secrets.token_hex(8)}",
                f"pw-{name}-{secrets.token_hex(8)}",
            )
            VALUE_OWNER.update({job.token: user, job.password: user})
            client.create_secret(Name=f"bench/{name}/token", SecretString=job.token)
            client.create_secret(
                Name=f"bench/{name}/db", SecretString=json.dumps({"password": job.password})
            )
            path = expect / name
            path.write_text(f"{job.token}:{job.password}")
            os.chown(path, job.uid, job.gid)
            path.chmod(0o400)
            jobs.append(job)
    return jobs


def job_files(base: Path, jobs: list[Job]) -> dict[str, str]:
    files = {}
    for job in jobs:
        check = CHECK.format(expect=base / "expect" / job.name)
        files[f"jobs/{job.name}.toml"] = job_toml(
            job.user,
            f"shell = '''{check}'''\n[secrets]\n"
            f'TOKEN = "bench/{job.name}/token"\n'
            f'DB_PASSWORD = {{ secret = "bench/{job.name}/db", key = "password" }}\n',
        )
    return files


# --- clients speaking the wire protocol ----------------------------------------------


def client_child(
    job: Job, other: Optional[Job], socket: str, ready: int, go: int, results: int
) -> None:
    """In a forked child: become the job's user, wait for the start, ask for the job's
    secrets then (``other``) for another user's job's; write one JSON line to
    ``results``."""
    line: dict[str, Any] = {"job": job.name}
    try:
        os.setgroups([])
        os.setgid(job.gid)
        os.setuid(job.uid)
        os.write(ready, b"r")
        os.read(go, 1)  # returns at the end of file: the start
        begin = time.monotonic()
        try:
            answer = ask(socket, brokerwire.request(brokerwire.SECRETS, job.name), 60)
        except BrokerUnreachable as exc:
            answer = {"ok": False, "kind": "unreachable", "error": exc.message}
        line["seconds"] = time.monotonic() - begin
        line["end"] = time.monotonic()
        line["ok"], line["kind"] = answer.get("ok"), answer.get("kind")
        line["error"] = str(answer.get("error") or "")[:200]
        line["exact"] = answer.get("values") == job.values
        values = answer.get("values") or {}
        line["foreign"] = any(
            VALUE_OWNER.get(value) not in (None, job.user) for value in values.values()
        )
        if other is None:
            return
        try:
            cross = ask(socket, brokerwire.request(brokerwire.SECRETS, other.name), 60)
        except BrokerUnreachable as exc:
            cross = {"ok": False, "kind": "unreachable", "error": exc.message}
        line["cross_refused"] = cross.get("ok") is False and cross.get("kind") == "refused"
        line["cross_values"] = bool(cross.get("values"))
    except BaseException as exc:
        line["crash"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        try:
            os.write(results, (json.dumps(line) + "\n").encode())
        finally:
            os._exit(0)


def client_round(
    jobs: list[Job], socket: str, cross: bool = True
) -> tuple[float, list[dict[str, Any]]]:
    """Fork one client per job, start them at once; return (the start, their lines).
    With ``cross``, each then asks for a job of the next user too."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    by_user = sorted({job.user for job in jobs})
    pids = []
    for job in jobs:
        next_user = by_user[(by_user.index(job.user) + 1) % len(by_user)]
        other = next(c for c in jobs if c.user == next_user) if cross else None
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(ready_r)
            os.close(go_w)
            os.close(res_r)
            client_child(job, other, socket, ready_w, go_r, res_w)
        pids.append(pid)
    os.close(ready_w)
    os.close(go_r)
    os.close(res_w)
    got = 0
    while got < len(jobs):
        chunk = os.read(ready_r, 4096)
        if not chunk:
            break
        got += len(chunk)
    os.close(ready_r)
    start = time.monotonic()
    os.close(go_w)
    data = b""
    while True:
        chunk = os.read(res_r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(res_r)
    for pid in pids:
        os.waitpid(pid, 0)
    return start, [json.loads(line) for line in data.decode().splitlines()]


# --- the shim as each job's user -------------------------------------------------------


def cron_env(job: Job) -> dict[str, str]:
    """What cron gives a job's command (and nothing of AWS)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/",
        "LOGNAME": job.user,
        "USER": job.user,
        "SHELL": "/bin/sh",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def shim_round(
    jobs: list[Job], script: str, host: Host, errors: Path
) -> tuple[list[float], dict[str, int]]:
    """Start every job's shim as its user at once; return (seconds from the start to
    each shim's exit, job -> exit status)."""
    go_r, go_w = os.pipe()
    procs: dict[int, tuple[Job, subprocess.Popen[bytes]]] = {}
    group = 0
    with open(errors, "ab") as stderr:
        for job in jobs:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", 'read _ || true; exec "$0" "$@"', script, *host.argv(job.name)],
                stdin=go_r,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=cron_env(job),
                cwd="/",
                user=job.uid,
                group=job.gid,
                extra_groups=[],
                process_group=group,
            )
            group = group or proc.pid
            procs[proc.pid] = (job, proc)
    os.close(go_r)
    time.sleep(1.0)  # every sh is blocked in `read` by now
    start = time.monotonic()
    os.close(go_w)
    seconds, codes = [], {}
    while len(codes) < len(procs):
        pid, status = os.waitpid(-group, 0)
        ended = time.monotonic()
        if pid in procs:
            job, proc = procs[pid]
            proc.returncode = os.waitstatus_to_exitcode(status)
            codes[job.name] = proc.returncode
            seconds.append(ended - start)
    return seconds, codes


def alone_shim(job: Job, script: str, host: Host) -> float:
    start = time.monotonic()
    subprocess.run(
        [script, *host.argv(job.name)],
        env=cron_env(job),
        cwd="/",
        user=job.uid,
        group=job.gid,
        extra_groups=[],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - start


# --- the run ---------------------------------------------------------------------------


class Outcome:
    """What the rounds saw."""

    def __init__(self, unit: str) -> None:
        self.unit = unit  # what one start is, for the CPU figure
        self.latencies: list[float] = []
        self.legit = 0
        self.refused = 0
        self.failed: list[str] = []
        self.crossings = 0
        self.cross_asked = 0
        self.cross_refused = 0
        self.broker_cpu = 0.0
        self.moto_cpu = 0.0
        self.rounds = 0

    def add_cpu(self, broker: BrokerProcess, moto: Moto, before: tuple[float, float]) -> None:
        self.broker_cpu += cpu_seconds(broker.proc.pid) - before[0]
        self.moto_cpu += cpu_seconds(moto.proc.pid) - before[1]
        self.rounds += 1

    def cpu_text(self) -> str:
        starts = self.rounds * USERS * JOBS_PER_USER
        return (
            f"CPU per {self.unit}: broker {self.broker_cpu / starts * 1e3:.1f} ms, moto "
            f"{self.moto_cpu / starts * 1e3:.1f} ms"
        )


def count_clients(lines: list[dict[str, Any]], outcome: Outcome) -> None:
    for line in lines:
        outcome.legit += 1
        if "crash" in line:
            outcome.failed.append(f"{line['job']}: client crashed: {line['crash']}")
            continue
        outcome.latencies.append(line["seconds"])
        if line["ok"] is False and line["kind"] == "refused":
            outcome.refused += 1
        if not line["exact"]:
            outcome.failed.append(f"{line['job']}: {line['kind']}: {line['error']}")
        outcome.crossings += int(line["foreign"]) + int(line["cross_values"])
        outcome.cross_asked += 1
        outcome.cross_refused += int(line["cross_refused"])


def count_shims(seconds: list[float], codes: dict[str, int], host: Host, outcome: Outcome) -> None:
    outcome.latencies += seconds
    for name, code in codes.items():
        outcome.legit += 1
        last = host.last(name)
        reason = str(last.get("reason") or "")
        if code == 3:
            outcome.crossings += 1
            outcome.failed.append(f"{name}: the job saw values that are not its own")
        elif code != 0:
            if "refused" in reason:
                outcome.refused += 1
            outcome.failed.append(f"{name}: exit {code}: {reason[:200]}")


REFUSAL = re.compile(r"refused (\w+) of job '([^']*)' to uid (\d+)")


def broker_refusals(broker: BrokerProcess, jobs: list[Job]) -> tuple[int, int, int]:
    """From the broker's log: refusals of a job to its own user, to another user, and
    how many lines hold more than one message (threads writing at once)."""
    owner = {job.name: job.uid for job in jobs}
    own = other = 0
    text = broker.log_path.read_text(errors="replace")
    for _op, job, uid in REFUSAL.findall(text):
        if owner.get(job) == int(uid):
            own += 1
        else:
            other += 1
    merged = sum(
        1 for line in text.splitlines() if line.count("cronsync broker:") > 1 or not line.strip()
    )
    return own, other, merged


def latency_row(outcome: Outcome, alone: float) -> tuple[str, str]:
    p50 = percentile(outcome.latencies, 0.5)
    p95 = percentile(outcome.latencies, 0.95)
    return (
        f"p50 {p50 / alone:.1f}x, p95 {p95 / alone:.1f}x alone",
        f"p50 {p50 * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms, max {max(outcome.latencies):.2f} s; "
        f"alone {alone * 1e3:.1f} ms; {outcome.cpu_text()}",
    )


def verdict(outcome: Outcome) -> tuple[bool, str]:
    ok = outcome.refused == 0 and outcome.crossings == 0 and not outcome.failed
    return ok, (
        f"{outcome.refused} of {outcome.legit} refused, {outcome.crossings} crossings, "
        f"{len(outcome.failed)} failed"
    )


def run(quick: bool, table: Table, context: Context) -> None:
    shim_rounds, client_rounds = (1, 2) if quick else (3, 5)
    with tempfile.TemporaryDirectory(prefix="bench-broker-", dir="/tmp") as tmp:
        base = Path(tmp)
        base.chmod(0o755)
        interpreter = host_interpreter()
        say(f"building cronsync's wheel and a host venv of {interpreter} ...")
        venv = make_venv(base / "host-venv", interpreter, str(build_wheel(base)))
        python, script = str(venv / "bin/python"), str(venv / "bin/cronsync-run")
        context.notes.append(
            f"Host install: `{interpreter} -m venv` + pip {pip_version(venv)}; broker "
            f"`{python} -m cronsync.cli.main broker` as root in its own process; moto in "
            "another; the shims and clients as the 20 job users."
        )
        say(f"creating users {PREFIX}01..{PREFIX}{USERS:02d} ...")
        create_users()
        moto: Optional[Moto] = None
        broker: Optional[BrokerProcess] = None
        try:
            moto = Moto(base)
            jobs = make_jobs(base, moto)
            remote = make_upstream(base, job_files(base, jobs))
            host = Host(
                base,
                "host",
                remote,
                f'[secrets]\nbackend = "aws"\n{aws_toml(moto.url, credentials_file(base))}',
                must_exist=True,
            )
            say("starting the broker ...")
            broker = BrokerProcess(python, host.config, host.socket, base / "broker.log")
            socket = str(host.socket)
            for job in jobs[:: JOBS_PER_USER * 4]:  # warm: the AWS client, its connections
                alone_shim(job, script, host)
            idle_hwm = broker.status("VmHWM")
            say("alone: one start at a time ...")
            alone_clients = []
            for job in jobs[::10]:
                _, lines = client_round([job], socket, cross=False)
                alone_clients.append(lines[0]["seconds"])
            alone_shims = [alone_shim(job, script, host) for job in jobs[::10]]
            clients = Outcome("client (its request and another user's)")
            shims = Outcome("start (one request)")
            for n in range(max(shim_rounds, client_rounds)):
                if n < client_rounds:
                    say(f"round {n + 1}: 200 clients at once ...")
                    before = cpu_seconds(broker.proc.pid), cpu_seconds(moto.proc.pid)
                    count_clients(client_round(jobs, socket)[1], clients)
                    clients.add_cpu(broker, moto, before)
                if n < shim_rounds:
                    say(f"round {n + 1}: 200 shims at once ...")
                    before = cpu_seconds(broker.proc.pid), cpu_seconds(moto.proc.pid)
                    seconds, codes = shim_round(jobs, script, host, base / "shims.err")
                    count_shims(seconds, codes, host, shims)
                    shims.add_cpu(broker, moto, before)
            hwm, rss = broker.status("VmHWM"), broker.status("VmRSS")
            own_refused, other_refused, merged = broker_refusals(broker, jobs)
            problems = [
                line
                for line in broker.lines()
                if line.strip() and "refused" not in line and "listening on" not in line
            ]
        finally:
            if broker is not None:
                broker.stop()
            if moto is not None:
                moto.stop()
            left = remove_users()
            if left:
                say(f"could not remove: {', '.join(left)}")
    alone_shim_s = sorted(alone_shims)[len(alone_shims) // 2]
    alone_client_s = sorted(alone_clients)[len(alone_clients) // 2]
    ok, text = verdict(shims)
    ratio, value = latency_row(shims, alone_shim_s)
    table.add(
        f"broker: 200 concurrent job starts (20 users x 10 jobs; the shim as each job's "
        f"user, 2 secrets each) x {shim_rounds}: start-to-exit latency",
        ratio,
        "0 refused, 0 crossings",
        ok and own_refused == 0,
        f"{value}; {text}",
    )
    ok, text = verdict(clients)
    ratio, value = latency_row(clients, alone_client_s)
    table.add(
        f"broker: 200 concurrent requests over the socket (clients forked + setuid to each "
        f"job's user) x {client_rounds}: connect-to-reply latency",
        ratio,
        "0 refused, 0 crossings",
        ok and own_refused == 0,
        f"{value}; {text}",
    )
    table.add(
        "the same clients asking for a job of another user",
        f"{clients.cross_refused} of {clients.cross_asked} refused",
        "all refused",
        clients.cross_refused == clients.cross_asked and clients.crossings == 0,
        f"broker's log: {other_refused} refusals to other users, {own_refused} to a job's "
        f"own user ({merged} lines empty or holding two messages: threads writing at once)",
    )
    table.add(
        "broker's peak RSS (VmHWM) after all rounds",
        f"{hwm / 1024 / RSS_LIMIT_MIB:.2f} of the limit",
        f"< {RSS_LIMIT_MIB} MiB",
        hwm / 1024 < RSS_LIMIT_MIB,
        f"{hwm / 1024:.1f} MiB (warm, before the rounds {idle_hwm / 1024:.1f} MiB; "
        f"now {rss / 1024:.1f} MiB)",
    )
    for failure in (shims.failed + clients.failed)[:10]:
        context.notes.append(f"failure: {failure}")
    for line in problems[-10:]:
        context.notes.append(f"broker said: {line}")


def main(argv: list[str]) -> None:
    if os.geteuid() != 0:
        sys.exit("bench_broker.py creates users and runs jobs as them: run it as root")
    quick = "--quick" in argv
    context = Context("bench_broker.py" + (" --quick" if quick else ""))
    table = Table()

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        run(quick, table, context)
    finally:
        left = remove_users()
        if left:
            say(f"users left behind: {', '.join(left)}")
    table.print(context)


if __name__ == "__main__":
    main(sys.argv[1:])
