"""Benchmark: the job shim, ``cronsync-run``, as a host runs it (start-up, secrets
through the broker, throughput, memory, output shipped by the broker).

cronsync is installed as a host installs it: its wheel (built from a copy of this
checkout) ``pip install``-ed with its dependencies into a fresh ``python3 -m venv`` of
the system interpreter; ``cronsync install-shim`` of that install writes the
``cronsync-run`` launcher cron lines call (the README's host set-up). moto (127.0.0.1)
and the broker (``cronsync broker`` of that install) run each in a process of their
own, so neither competes with the timing harness for its interpreter lock; they still
share the machine's cores. Every figure is a ratio to a baseline measured in the same
run, commands interleaved round-robin, medians of many repetitions (the machine is
shared and noisy):

1. start-up   — the installed ``cronsync-run`` running a job ``true`` (no secrets,
                local log; 100 earlier runs kept, as on a host in its steady state)
                vs ``python -I -c pass`` of the same venv (issue 9: <= 1.5x);
2. secrets    — the same with one Secrets Manager secret (a JSON key) from the warm
                broker vs a bare boto3 script fetching the same secret and exec'ing
                ``/bin/true`` (<= 0.3x), and vs the seed's way, ``aws secretsmanager
                get-secret-value ... | jq -r .SecretString | jq -r .KEY`` (aws CLI in
                a venv of its own, <= 0.2x);
3. throughput — a job printing 500 MB of short lines through the shim into its local
                log vs the same command writing to a file by itself; the shim's own
                peak RSS (VmHWM of the process running its entry, the job excluded);
4. shipping   — the shim no longer talks to CloudWatch: it writes the spool and tells
                the broker, which ships. A job printing 1,000,000 lines on a host with
                ``[logs] cloudwatch = true`` vs local only (the shim's own cost), the
                events per second the broker delivered to moto, and how soon a line a
                running job printed is in CloudWatch (issue 9: within 5 s). The
                forwarding code's own speed in one process is ``bench_cloudlogs.py``.

The broker under load (200 concurrent job starts of 20 users) is ``bench_broker.py``;
where the shim's start-up goes is ``bench_shim_startup.py``.

Not a test: ``python bench/bench_shim.py [--quick]`` (``--quick``: 50 MB, 100,000
lines, fewer repetitions). The table (stdout) is markdown for the README; progress goes
to stderr. Needs network access to the package index once per run (the host venvs),
``jq``, and no root.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from benchkit import (
    BrokerProcess,
    Context,
    Host,
    Moto,
    Table,
    aws_env,
    aws_toml,
    build_wheel,
    credentials_file,
    fmt_ratio,
    host_interpreter,
    interleaved,
    job_toml,
    make_upstream,
    make_venv,
    ms,
    no_aws_env,
    pip_version,
    run_quiet,
    say,
    wall,
)

LINE = "some short log line of about fifty characters......"  # 51 bytes + newline
SECRET_ID = "bench/db"
SECRET_KEY = "password"
SECRET_VALUE = "pw-98765-bench"
KEEP_RUNS = 100  # the shim prunes to this many records: a host's steady state
# The bare boto3 way: fetch the secret, put the key's value in the environment, exec.
BOTO3_SCRIPT = """\
import json, os, sys
import boto3
client = boto3.client("secretsmanager", endpoint_url=sys.argv[1])
value = json.loads(client.get_secret_value(SecretId=sys.argv[2])["SecretString"])[sys.argv[3]]
if os.environ.get("BENCH_SHOW"):
    print(value, flush=True)
os.execve("/bin/true", ["true"], {**os.environ, "DB_PASSWORD": value})
"""
# The shim's own peak RSS: VmHWM of the process running the shim's entry (every thread,
# no child). Not ru_maxrss: Linux carries the parent's high-water mark across fork +
# exec, so a child of this (big) process would report ours.
MAXRSS_WRAPPER = (
    "import sys\n"
    "from cronsync.cli.shim import main\n"
    "rc = main(sys.argv[1:])\n"
    "with open('/proc/self/status') as f:\n"
    "    hwm = [l.split()[1] for l in f if l.startswith('VmHWM:')]\n"
    "print(hwm[0], file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def jobs(user: str, flood_bytes: int, lines: int) -> dict[str, str]:
    secret = f'[secrets]\nDB_PASSWORD = {{ secret = "{SECRET_ID}", key = "{SECRET_KEY}" }}\n'
    return {
        "jobs/noop.toml": job_toml(user, 'command = ["true"]\n'),
        "jobs/secret1.toml": job_toml(user, 'command = ["true"]\n' + secret),
        "jobs/flood.toml": job_toml(user, f"shell = \"yes '{LINE}' | head -c {flood_bytes}\"\n"),
        "jobs/lines.toml": job_toml(user, f"shell = \"yes '{LINE}' | head -n {lines}\"\n"),
        "jobs/slow.toml": job_toml(user, 'shell = "echo first-line; sleep 8"\n'),
    }


def user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


class Install:
    """The host install (venv, console script) and the aws CLI's venv."""

    def __init__(self, base: Path) -> None:
        self.interpreter = host_interpreter()
        say(f"building cronsync's wheel and a host venv of {self.interpreter} ...")
        wheel = build_wheel(base)
        self.venv = make_venv(base / "host-venv", self.interpreter, str(wheel))
        self.python = str(self.venv / "bin/python")
        # the README's set-up: `cronsync install-shim` writes the launcher cron lines call
        self.script = str(base / "bin/cronsync-run")
        Path(self.script).parent.mkdir()
        run_quiet([str(self.venv / "bin/cronsync"), "install-shim", "--path", self.script])
        self.pip = pip_version(self.venv)
        self.aws: Optional[str] = None
        self.aws_problem = ""
        say("installing the aws CLI (awscli) into a venv of its own ...")
        try:
            aws_venv = make_venv(base / "awscli-venv", self.interpreter, "awscli")
            self.aws = str(aws_venv / "bin/aws")
        except RuntimeError as exc:
            self.aws_problem = f"pip install awscli failed: {str(exc)[-300:]}"
        self.jq = shutil.which("jq")

    def describe(self) -> str:
        version = subprocess.run(
            [self.python, "-c", "import sys; print(sys.version.split()[0])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        shebang = Path(self.script).read_text().splitlines()[0]
        return (
            f"Host install: `{self.interpreter} -m venv` (Python {version}), cronsync's "
            f"wheel installed with its dependencies by that venv's pip {self.pip}; "
            f"`cronsync install-shim` wrote the `cronsync-run` launcher (`{shebang}`)."
        )


def bench_startup(table: Table, install: Install, local: Host, repeat: int) -> None:
    env = no_aws_env()
    say(f"start-up: {KEEP_RUNS} runs first (the records a host keeps) ...")
    for _ in range(KEEP_RUNS):
        wall([install.script, *local.argv("noop")], env)
    py = install.python
    samples = interleaved(
        {
            "true": (["true"], env),
            "python -I -c pass": ([py, "-I", "-c", "pass"], env),
            "python -I -S -c pass": ([py, "-I", "-S", "-c", "pass"], env),
            "shim": ([install.script, *local.argv("noop")], env),
        },
        repeat,
    )
    ratio = samples.ratio("shim", "python -I -c pass")
    shim, python = samples.median("shim"), samples.median("python -I -c pass")
    table.add(
        f"shim, no secrets: `cronsync-run` (job `true`) / `python -I -c pass` (median of {repeat})",
        fmt_ratio(ratio),
        "<= 1.5x",
        ratio[0] <= 1.5,
        f"{ms(shim)} / {ms(python)}; `true` alone {ms(samples.median('true'))}, "
        f"`python -I -S -c pass` {ms(samples.median('python -I -S -c pass'))}",
    )
    last = local.last("noop")
    assert last.get("status") == "succeeded", last


def bench_secrets(
    table: Table, install: Install, local: Host, moto: Moto, base: Path, repeat: int
) -> None:
    script = base / "boto3_secret.py"
    script.write_text(BOTO3_SCRIPT)
    with_aws = aws_env(base)
    boto3_argv = [install.python, str(script), moto.url, SECRET_ID, SECRET_KEY]
    show = subprocess.run(
        boto3_argv, env={**with_aws, "BENCH_SHOW": "1"}, capture_output=True, text=True, check=True
    )
    assert show.stdout.strip() == SECRET_VALUE, show
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "shim": ([install.script, *local.argv("secret1")], no_aws_env()),
        "boto3": (boto3_argv, with_aws),
    }
    seed = ""
    if install.aws and install.jq:
        seed = (
            f"{install.aws} secretsmanager get-secret-value --secret-id {SECRET_ID} "
            f"--endpoint-url {moto.url} | {install.jq} -r .SecretString | "
            f"{install.jq} -r .{SECRET_KEY}"
        )
        got = subprocess.run(
            ["/bin/sh", "-c", seed], check=False, env=with_aws, capture_output=True, text=True
        )
        assert got.stdout.strip() == SECRET_VALUE, got
        commands["aws | jq"] = (
            ["/bin/sh", "-c", f'DB_PASSWORD="$({seed})" && export DB_PASSWORD && exec /bin/true'],
            with_aws,
        )
    samples = interleaved(commands, repeat)
    last = local.last("secret1")
    assert last.get("status") == "succeeded", last
    shim = samples.median("shim")
    ratio = samples.ratio("shim", "boto3")
    table.add(
        "shim, 1 Secrets Manager secret via the warm broker / bare boto3 script fetching it "
        f"(median of {repeat})",
        fmt_ratio(ratio),
        "<= 0.3x",
        ratio[0] <= 0.3,
        f"{ms(shim)} / {ms(samples.median('boto3'))}",
    )
    if "aws | jq" in commands:
        seed_ratio = samples.ratio("shim", "aws | jq")
        table.add(
            "same / the seed's way: aws CLI `get-secret-value` piped to `jq` twice",
            fmt_ratio(seed_ratio),
            "<= 0.2x",
            seed_ratio[0] <= 0.2,
            f"{ms(shim)} / {ms(samples.median('aws | jq'))}",
        )
    else:
        why = install.aws_problem or "jq is not installed (apt-get install jq)"
        table.add("same / the seed's way (aws CLI, jq)", "not measured", "<= 0.2x", None, why)


def with_maxrss(python: str, argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run the shim's entry in a wrapper; return (seconds, the shim's own max RSS KiB)."""
    start = time.perf_counter()
    done = subprocess.run(
        [python, "-c", MAXRSS_WRAPPER, *argv],
        check=False,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"shim exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed, int(done.stderr.strip().splitlines()[-1])


def bench_throughput(
    table: Table, install: Install, local: Host, base: Path, size: int, repeat: int
) -> None:
    env = no_aws_env()
    out = base / "direct.out"
    direct = ["/bin/sh", "-c", f"yes '{LINE}' | head -c {size} > {out}"]
    direct_s, shim_s, rss = [], [], []
    for _ in range(repeat):
        direct_s.append(wall(direct, env))
        out.unlink()
        seconds, maxrss = with_maxrss(install.python, local.argv("flood"), env)
        shim_s.append(seconds)
        rss.append(maxrss)
        last = local.last("flood")
        assert last["status"] == "succeeded" and last["output_bytes"] == size, last
        local.drop_logs()
    _, idle_rss = with_maxrss(install.python, local.argv("noop"), env)
    d, s = statistics.median(direct_s), statistics.median(shim_s)
    mb = size / 1e6
    table.add(
        f"{mb:.0f} MB of short lines through the shim to its local log / written to a file "
        f"directly (median of {repeat})",
        f"{s / d:.2f}x",
        "<= 1.5x",
        s / d <= 1.5,
        f"{s:.2f} s ({mb / s:,.0f} MB/s) / {d:.2f} s",
    )
    peak = max(rss) / 1024
    table.add(
        f"shim's own peak RSS during the {mb:.0f} MB run",
        "",
        "< 64 MiB",
        peak < 64,
        f"{peak:.1f} MiB ({idle_rss / 1024:.1f} MiB for the `true` job)",
    )


def stored_events(moto: Moto, group: str, stream: str) -> int:
    """Count the events moto holds in a stream (-1 when that fails)."""
    client = moto.client("logs")
    count, token = 0, None
    try:
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream,
                "startFromHead": True,
                "limit": 10_000,
            }
            if token:
                kwargs["nextToken"] = token
            answer = client.get_log_events(**kwargs)
            count += len(answer["events"])
            if not answer["events"] or answer.get("nextForwardToken") == token:
                return count
            token = answer["nextForwardToken"]
    except Exception:  # a count we cannot get is reported as unknown
        return -1


def wait_gone(folder: Path, seconds: float) -> bool:
    """Wait until ``folder`` holds no pending file; whether it came to that."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(folder.glob("*.json")):
            return True
        time.sleep(0.02)
    return False


def first_line_latency(install: Install, cloud: Host, moto: Moto) -> float:
    """Seconds from the shim's start to its job's first line being in CloudWatch, the
    job still running (it sleeps after that line)."""
    client = moto.client("logs")
    group = "/cronsync/jobs"
    begin = time.monotonic()
    proc = subprocess.Popen(
        [install.script, *cloud.argv("slow")],
        env=no_aws_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = -1.0
    try:
        while time.monotonic() - begin < 30 and seen < 0:
            try:
                streams = client.describe_log_streams(logGroupName=group)["logStreams"]
            except client.exceptions.ResourceNotFoundException:
                streams = []
            for stream in streams:
                if "/slow/" not in stream["logStreamName"]:
                    continue
                events = client.get_log_events(
                    logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
                )["events"]
                if any("first-line" in event["message"] for event in events):
                    seen = time.monotonic() - begin
            time.sleep(0.02)
        running = proc.poll() is None
    finally:
        proc.wait()
    if seen >= 0 and not running:
        raise RuntimeError("the job had ended before its first line was seen")
    return seen


def bench_shipping(
    table: Table, install: Install, local: Host, cloud: Host, moto: Moto, lines: int
) -> None:
    env = no_aws_env()
    local_s = wall([install.script, *local.argv("lines")], env)
    local.drop_logs()
    pending = cloud.runs / "lines" / "pending"
    begin = time.monotonic()
    cloud_s = wall([install.script, *cloud.argv("lines")], env)
    ended = time.monotonic()
    done = wait_gone(pending, 600)
    delivered = time.monotonic()
    last = cloud.last("lines")
    total = lines + 2  # cronsync's start and end notes
    stored = stored_events(moto, "/cronsync/jobs", str(last.get("cloudwatch_stream") or ""))
    table.add(
        f"{lines:,} lines through the shim, host shipping to CloudWatch / local log only",
        f"{cloud_s / local_s:.2f}x",
        "",
        None,
        f"{cloud_s:.2f} s / {local_s:.2f} s (the shim writes the spool either way)",
    )
    state = "all" if stored == total else f"{stored:,} of {total:,}"
    if not done:
        state += " (pending file still there after 600 s)"
    table.add(
        "events the broker delivered to moto (own processes), from the shim's start",
        "",
        "",
        None,
        f"{total / (delivered - begin):,.0f} events/s; {state} stored; last one "
        f"{delivered - ended:.1f} s after the shim exited",
    )
    cloud.drop_logs()
    latency = first_line_latency(install, cloud, moto)
    table.add(
        "a running job's first line in CloudWatch, from the shim's start",
        "",
        "< 5 s",
        0 <= latency < 5,
        f"{latency:.2f} s" if latency >= 0 else "not seen in 30 s",
    )


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    flood = 50_000_000 if quick else 500_000_000
    lines = 100_000 if quick else 1_000_000
    context = Context("bench_shim.py" + (" --quick" if quick else ""))
    table = Table()
    with tempfile.TemporaryDirectory(prefix="bench-shim-", dir="/tmp") as tmp:
        base = Path(tmp)
        install = Install(base)
        context.notes.append(install.describe())
        moto = Moto(base)
        brokers: list[BrokerProcess] = []
        try:
            moto.client("secretsmanager").create_secret(
                Name=SECRET_ID, SecretString=json.dumps({SECRET_KEY: SECRET_VALUE})
            )
            creds = credentials_file(base)
            remote = make_upstream(base, jobs(user_name(), flood, lines))
            aws = aws_toml(moto.url, creds)
            me = [user_name()]  # root when run as root: then it must be named
            local = Host(base, "local", remote, f'[secrets]\nbackend = "aws"\n{aws}', allowed=me)
            cloud = Host(base, "cloud", remote, f"[logs]\ncloudwatch = true\n{aws}", allowed=me)
            say("starting the brokers (own processes) ...")
            brokers.append(
                BrokerProcess(install.python, local.config, local.socket, base / "broker-local.log")
            )
            brokers.append(
                BrokerProcess(install.python, cloud.config, cloud.socket, base / "broker-cloud.log")
            )
            say("start-up ...")
            bench_startup(table, install, local, 15 if quick else 40)
            say("secrets ...")
            bench_secrets(table, install, local, moto, base, 5 if quick else 15)
            say("throughput ...")
            bench_throughput(table, install, local, base, flood, 3 if quick else 5)
            say("shipping ...")
            bench_shipping(table, install, local, cloud, moto, lines)
        finally:
            for broker in brokers:
                broker.stop()
            moto.stop()
    table.print(context)


if __name__ == "__main__":
    main(sys.argv[1:])
