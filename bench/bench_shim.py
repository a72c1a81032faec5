"""Benchmark: the job shim, ``cronsync-run`` (start-up, secrets, throughput, memory).

Builds its own host sandboxes in a temp dir (a real git repository pushed to a bare
remote, synced with ``cronsync.host.sync.run_sync``) and measures, against baselines taken in
the same run (the machines are shared and noisy: compare medians and ratios):

1. start-up   — the shim's entry for a job running ``true``, minus ``true`` run
                directly by the same harness: in a clean virtual environment (as a
                host install makes one: none of this machine's site ``.pth`` files),
                then the installed ``cronsync-run`` console script and the shim under
                ``python -I -S`` as references;
2. secrets    — the same job with two secrets from Secrets Manager (moto on loopback,
                in this process) and, for reference, from the file backend;
3. throughput — a job printing 500 MB of short lines through the shim into its local
                log vs the same command writing to a file by itself;
4. memory     — the shim's own peak RSS during (3): VmHWM of the process running the
                shim's entry (its threads included, the job excluded);
5. CloudWatch — 1,000,000 lines with ``[logs] cloudwatch = true`` to moto vs local only,
                and the events per second the shim delivered before it exited (what is
                left after its deadline stays pending for the next run or ``flush``).

Not a test: run it by hand, ``python bench/bench_shim.py [--quick]`` (``--quick``: 50 MB
and 100,000 lines, fewer repetitions; start-up is then a large part of the throughput
ratio). moto runs in this process and competes for the two cores, so the secrets and
CloudWatch figures are pessimistic. The table (stdout) is markdown for the README;
progress goes to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import cronsync
from cronsync.core.logformat import CRONSYNC, MARK
from cronsync.host.config import load_config
from cronsync.host.sync import run_sync
from cronsync.run.after import FORWARD_DEADLINE
from cronsync.run.jobspec import load_release
from cronsync.run.store import read_last

LINE = "some short log line of about fifty characters......"  # 51 bytes + newline
AGENT_DIR = str(Path(cronsync.__file__).resolve().parents[1])
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
# The shim's own peak RSS: VmHWM, the high-water mark of this process's address space
# (every thread, no child). Not ru_maxrss: Linux carries the parent's high-water mark
# across fork + exec, so a child of this (big, moto-holding) process would report ours.
MAXRSS_WRAPPER = (
    "import sys\n"
    "from cronsync.cli.shim import main\n"
    "rc = main(sys.argv[1:])\n"
    "with open('/proc/self/status') as f:\n"
    "    hwm = [l.split()[1] for l in f if l.startswith('VmHWM:')]\n"
    "print(hwm[0], file=sys.stderr)\n"
    "sys.exit(rc)\n"
)
SHIM_ENTRY = "import sys\nfrom cronsync.cli.shim import main\nsys.exit(main(sys.argv[1:]))\n"
NO_SITE_WRAPPER = (
    f"import sys; sys.path.insert(0, {AGENT_DIR!r})\n"
    "from cronsync.cli.shim import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def shim_script() -> str:
    """The installed ``cronsync-run`` (next to this interpreter, not a pyenv shim)."""
    beside = Path(sysconfig.get_path("scripts")) / "cronsync-run"
    if beside.is_file():
        return str(beside)
    found = shutil.which("cronsync-run")
    if not found:
        sys.exit("cronsync-run is not installed: pip install -e . (from the checkout)")
    return found


class Host:
    """One synced host sandbox (its own root and agent.toml) of the shared upstream."""

    def __init__(self, base: Path, name: str, remote: Path, extra: str) -> None:
        self.root = base / name
        config = self.root / "etc/cronsync/agent.toml"
        config.parent.mkdir(parents=True)
        config.write_text(
            f'[repo]\nurl = "{remote}"\n[host]\nname = "bench-{name}"\ntimezone = "UTC"\n'
            f'[users]\nmust_exist = false\n[paths]\nroot = "{self.root}"\n{extra}'
        )
        secrets = self.root / "etc/cronsync/secrets.d" / f"{user_name()}.toml"
        secrets.parent.mkdir(parents=True)
        secrets.write_text('"bench/token" = "tok-123456"\n"bench/db" = { password = "pw-98765" }\n')
        secrets.chmod(0o600)
        outcome = run_sync(load_config(str(config)))
        assert outcome.record.result == "installed", outcome.record
        self.runs = self.root / "var/lib/cronsync/runs"

    def argv(self, job: str) -> list[str]:
        return ["--root", str(self.root), job]

    def last(self, job: str) -> dict[str, Any]:
        return dict(read_last(self.runs, job)["last_run"])

    def drop_logs(self) -> None:
        """Delete the run logs written so far (the big runs would fill the disk)."""
        shutil.rmtree(self.root / "var/log/cronsync", ignore_errors=True)


def user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def make_upstream(base: Path, flood_bytes: int, lines: int) -> Path:
    """Commit the benchmark's jobs to a work repository and push it to a bare remote."""
    work, remote = base / "work", base / "remote.git"
    (work / "jobs").mkdir(parents=True)
    head = f'description = "bench"\nowner = "bench@example.com"\nuser = "{user_name()}"\n'
    head += 'schedule = "0 3 * * *"\n'
    jobs = {
        "noop": 'command = ["true"]\n',
        "secret": 'command = ["true"]\n[secrets]\nTOKEN = "bench/token"\n'
        'DB_PASSWORD = { secret = "bench/db", key = "password" }\n',
        "flood": f"shell = \"yes '{LINE}' | head -c {flood_bytes}\"\n",
        "lines": f"shell = \"yes '{LINE}' | head -n {lines}\"\n",
    }
    for name, body in jobs.items():
        (work / "jobs" / f"{name}.toml").write_text(head + body)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "jobs", cwd=work)
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=base)
    git("push", "-q", str(remote), "main", cwd=work)
    return remote


def wall(argv: Sequence[str], env: Optional[dict[str, str]] = None) -> float:
    """Run ``argv`` to its end (output discarded); return its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        argv, check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}")
    return elapsed


def interleaved(
    commands: dict[str, list[str]], repeat: int, env: dict[str, str]
) -> dict[str, float]:
    """Run every command ``repeat`` times, round-robin (noise hits them alike); return
    each one's median seconds."""
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for argv in commands.values():  # warm the page cache and the .pyc files
        wall(argv, env)
    for _ in range(repeat):
        for label, argv in commands.items():
            samples[label].append(wall(argv, env))
    return {label: statistics.median(values) for label, values in samples.items()}


def with_maxrss(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run the shim's entry in a wrapper; return (seconds, the shim's own max RSS KiB)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MAXRSS_WRAPPER, *argv],
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


class Table:
    """The compact result table (markdown, to paste into the README)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, what: str, value: str, ratio: str = "", goal: str = "") -> None:
        self.rows.append((what, value, ratio, goal))
        print(f"  {what}: {value} {ratio} {goal}".rstrip(), file=sys.stderr, flush=True)

    def print(self) -> None:
        header = ("what", "measured", "vs baseline", "goal")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(4)]
        for n, row in enumerate([header, *self.rows]):
            print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
            if n == 0:
                print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def start_moto(base: Path) -> tuple[Any, str, Path]:
    """Start moto on 127.0.0.1 in this process; return it, its URL, a credentials file."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    credentials = base / "aws-credentials"
    credentials.write_text("[default]\naws_access_key_id = bench\naws_secret_access_key = bench\n")
    credentials.chmod(0o600)
    return server, f"http://{host}:{port}", credentials


def aws_client(service: str, url: str) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def clean_venv(base: Path) -> str:
    """A virtual environment as a host install makes one (``python3 -m venv``, no
    system site-packages, so none of this machine's site ``.pth`` files run), seeing
    cronsync through a one-line ``.pth``; return its interpreter. The no-secrets,
    local-log path of the shim imports nothing outside the standard library."""
    venv = base / "clean-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin/python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "cronsync-source.pth").write_text(AGENT_DIR + "\n")
    return python


def bench_startup(
    table: Table, local: Host, script: str, env: dict[str, str], repeat: int
) -> float:
    py = sys.executable
    venv = clean_venv(local.root.parent)
    medians = interleaved(
        {
            "true": ["true"],
            "python -c pass": [py, "-c", "pass"],
            "python -I -S -c pass": [py, "-I", "-S", "-c", "pass"],
            "venv python -c pass": [venv, "-c", "pass"],
            "shim": [script, *local.argv("noop")],
            "shim -I -S": [py, "-I", "-S", "-c", NO_SITE_WRAPPER, *local.argv("noop")],
            "shim venv": [venv, "-c", SHIM_ENTRY, *local.argv("noop")],
            "shim file secrets": [script, *local.argv("secret")],
        },
        repeat,
        env,
    )
    base, python = medians["true"], medians["python -c pass"]
    clean, clean_python = medians["shim venv"] - base, medians["venv python -c pass"]
    table.add(
        f"shim overhead in a clean venv, `true`, local log (median of {repeat})",
        ms(clean),
        f"{ms(clean_python)} interpreter + {ms(medians['shim venv'] - clean_python)} cronsync",
        f"< 30 ms: {verdict(clean < 0.030)}",
    )
    table.add("`true` run directly (baseline)", ms(base))
    table.add(
        "`python3 -c pass` / with `-I -S` (reference)",
        ms(python),
        f"{ms(medians['python -I -S -c pass'])} with -I -S",
    )
    overhead = medians["shim"] - base
    table.add(
        "same, the installed console script under this machine's interpreter",
        ms(overhead),
        f"{ms(python)} interpreter + {ms(medians['shim'] - python)} cronsync",
    )
    bare = medians["python -I -S -c pass"]
    table.add(
        "same, under `python -I -S` (no site, no .pth files: what-if)",
        ms(medians["shim -I -S"] - base),
        f"{ms(bare)} interpreter + {ms(medians['shim -I -S'] - bare)} cronsync",
    )
    table.add(
        "shim overhead, 2 secrets from the file backend",
        ms(medians["shim file secrets"] - base),
        f"{(medians['shim file secrets'] - base) / overhead:.2f}x no secrets",
    )
    return overhead


def bench_aws_secrets(
    table: Table,
    base: Path,
    remote: Path,
    url: str,
    creds: Path,
    script: str,
    env: dict[str, str],
    repeat: int,
    no_secrets: float,
) -> None:
    client = aws_client("secretsmanager", url)
    client.create_secret(Name="bench/token", SecretString="tok-123456")
    client.create_secret(Name="bench/db", SecretString=json.dumps({"password": "pw-98765"}))
    host = Host(
        base,
        "aws",
        remote,
        f'[secrets]\nbackend = "aws"\n[aws]\nregion = "us-east-1"\nendpoint_url = "{url}"\n'
        f'credentials_file = "{creds}"\n',
    )
    medians = interleaved({"true": ["true"], "shim": [script, *host.argv("secret")]}, repeat, env)
    last = host.last("secret")
    assert last["status"] == "succeeded", last
    overhead = medians["shim"] - medians["true"]
    table.add(
        f"shim overhead, 2 secrets from Secrets Manager on moto (median of {repeat})",
        ms(overhead),
        f"{overhead / no_secrets:.1f}x no secrets",
        f"< 400 ms: {verdict(overhead < 0.400)}",
    )


def bench_throughput(
    table: Table, local: Host, base: Path, size: int, repeat: int, env: dict[str, str]
) -> None:
    out = base / "direct.out"
    direct = ["/bin/sh", "-c", f"yes '{LINE}' | head -c {size} > {out}"]
    direct_s, shim_s, rss = [], [], []
    for _ in range(repeat):
        direct_s.append(wall(direct, env))
        out.unlink()
        seconds, maxrss = with_maxrss(local.argv("flood"), env)
        shim_s.append(seconds)
        rss.append(maxrss)
        last = local.last("flood")
        assert last["status"] == "succeeded" and last["output_bytes"] == size, last
        local.drop_logs()
    _, idle_rss = with_maxrss(local.argv("noop"), env)
    d, s = statistics.median(direct_s), statistics.median(shim_s)
    mb = size / 1e6
    table.add(
        f"{mb:.0f} MB of short lines written to a file directly (baseline)",
        f"{d:.2f} s",
        f"{mb / d:,.0f} MB/s",
    )
    table.add(
        f"{mb:.0f} MB of short lines through the shim to its local log (median of {repeat})",
        f"{s:.2f} s",
        f"{s / d:.2f}x direct; {mb / s:,.0f} MB/s",
        f"<= 1.5x: {verdict(s / d <= 1.5)}",
    )
    peak = max(rss) / 1024
    table.add(
        f"shim's own peak RSS during the {mb:.0f} MB run",
        f"{peak:.1f} MiB",
        f"{idle_rss / 1024:.1f} MiB for the `true` job",
        f"< 64 MiB: {verdict(peak < 64)}",
    )


def bench_cloudwatch(
    table: Table,
    local: Host,
    base: Path,
    remote: Path,
    url: str,
    creds: Path,
    lines: int,
    env: dict[str, str],
) -> None:
    cloud = Host(
        base,
        "cloud",
        remote,
        f'[logs]\ncloudwatch = true\n[aws]\nregion = "us-east-1"\nendpoint_url = "{url}"\n'
        f'credentials_file = "{creds}"\n',
    )
    script = shim_script()
    local_s = wall([script, *local.argv("lines")], env)
    local.drop_logs()
    cloud_s = wall([script, *cloud.argv("lines")], env)
    last = cloud.last("lines")
    job_s = job_span(Path(last["log"]))
    delivery = (last.get("extra") or {}).get("cloudwatch") or {}
    sent, total = int(delivery.get("sent_events") or 0), lines + 2  # + cronsync's 2 notes
    group = str(load_release(cloud.root).settings.get("log_group"))
    stored = stored_events(url, group, last.get("cloudwatch_stream") or "")
    table.add(
        f"{lines:,} lines, local log only (baseline)",
        f"{local_s:.2f} s",
        f"{lines / local_s:,.0f} lines/s",
    )
    table.add(
        f"{lines:,} lines, also forwarded to CloudWatch Logs on moto",
        f"{cloud_s:.2f} s",
        f"{cloud_s / local_s:.1f}x local only (the job itself: {job_s:.2f} s)",
    )
    left = "all delivered" if delivery.get("delivered") else f"{total - sent:,} left pending"
    if not delivery.get("delivered") and cloud_s >= FORWARD_DEADLINE:
        left += f" (the shim waits {FORWARD_DEADLINE:g} s at most)"
    table.add(
        "events the shim delivered, and their rate",
        f"{sent:,} of {total:,}" + (f"; {stored:,} in moto" if stored >= 0 else ""),
        f"{sent / cloud_s:,.0f} events/s",
        left,
    )
    cloud.drop_logs()


def job_span(log: Path) -> float:
    """Seconds between cronsync's start and end notes in a run log: the job's own run,
    without the shim's set-up or its wait for CloudWatch at the end."""
    size = log.stat().st_size
    with open(log, "rb") as handle:
        head = handle.read(4096)
        handle.seek(max(0, size - 4096))
        tail = handle.read()
    note = MARK + CRONSYNC.encode() + b" "

    def stamp(data: bytes, at: int) -> int:
        return int(data[at + len(note) : data.index(b"\n", at)])

    return (stamp(tail, tail.rindex(note)) - stamp(head, head.index(note))) / 1000


def stored_events(url: str, group: str, stream: str) -> int:
    """Count the events moto holds in the run's stream, paging get_log_events (-1 when
    that fails)."""
    client = aws_client("logs", url)
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


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    flood = 50_000_000 if quick else 500_000_000
    lines = 100_000 if quick else 1_000_000
    os.environ.update(GIT_ENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    script = shim_script()
    table = Table()
    print(
        f"cronsync-run: {script}; python {sys.version.split()[0]}; "
        f"{os.cpu_count()} cpus{' (--quick)' if quick else ''}",
        file=sys.stderr,
    )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-shim-") as tmp:
        base = Path(tmp)
        remote = make_upstream(base, flood, lines)
        local = Host(base, "local", remote, "")
        no_secrets = bench_startup(table, local, script, env, 15 if quick else 30)
        server, url, creds = start_moto(base)
        try:
            bench_aws_secrets(
                table, base, remote, url, creds, script, env, 5 if quick else 10, no_secrets
            )
            bench_throughput(table, local, base, flood, 3, env)
            bench_cloudwatch(table, local, base, remote, url, creds, lines, env)
        finally:
            server.stop()
    print(f"(done in {time.perf_counter() - began:.0f} s)", file=sys.stderr)
    table.print()


if __name__ == "__main__":
    main(sys.argv[1:])
