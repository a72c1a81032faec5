"""What the benchmarks that start real processes share: a host install of cronsync in a
clean virtual environment, moto and the broker each in a process of their own, synced
sandbox hosts, interleaved timing, and the markdown table with its context line.

Not a benchmark itself (``bench_shim.py``, ``bench_broker.py`` and
``bench_shim_startup.py`` use it). Nothing here sends traffic off this machine: moto
listens on 127.0.0.1, and every process that could reach for AWS gets dummy
credentials, ``AWS_EC2_METADATA_DISABLED=true`` and config files that do not exist.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import cronsync
from cronsync.core import brokerwire
from cronsync.host.config import load_config
from cronsync.host.sync import run_sync
from cronsync.run.broker import BrokerUnreachable, ask
from cronsync.run.store import read_last

CHECKOUT = Path(cronsync.__file__).resolve().parents[2]
REGION = "us-east-1"
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
MOTO_SCRIPT = """\
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def say(text: str) -> None:
    """Progress, on stderr (stdout is the table)."""
    print(text, file=sys.stderr, flush=True)


# --- the machine ------------------------------------------------------------------


def loadavg() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class Context:
    """The run's context line: date, machine, load average before and after."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.began = time.monotonic()
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.load_before = loadavg()
        self.notes: list[str] = []

    def line(self) -> str:
        seconds = time.monotonic() - self.began
        return (
            f"{self.title}, {self.date}: {os.cpu_count()} cores ({cpu_model()}), Linux "
            f"{platform.release()}; load average {self.load_before} before, {loadavg()} "
            f"after; {seconds:.0f} s."
        )


class Table:
    """The result table (markdown, for the README): ratios first, absolute figures as
    context."""

    HEADER = ("figure", "ratio", "target", "", "measured (context)")

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(
        self,
        what: str,
        ratio: str = "",
        target: str = "",
        ok: Optional[bool] = None,
        value: str = "",
    ) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "**MISS**")
        self.rows.append((what, ratio, target, verdict, value))
        say(f"  {what}: {ratio} {target} {verdict} | {value}")

    def print(self, context: Context) -> None:
        print(f"\n{context.line()}\n")
        rows = [self.HEADER, *self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.HEADER))]
        for n, row in enumerate(rows):
            print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
            if n == 0:
                print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for note in context.notes:
            print(f"\n{note}")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --- environments ------------------------------------------------------------------


def no_aws_env(extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """This process's environment without AWS_* and PYTHON* (cron gives a job nothing
    of AWS, and no PYTHONDONTWRITEBYTECODE or PYTHONUNBUFFERED either), the metadata
    service switched off in case anything looks for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.update(extra or {})
    return env


def aws_env(base: Path) -> dict[str, str]:
    """For boto3 scripts and the aws CLI: dummy keys, a region, no metadata service,
    config and credentials files that do not exist (nothing of this machine's)."""
    return no_aws_env(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(base / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(base / "no-aws-credentials"),
            "AWS_PAGER": "",
        }
    )


def run_quiet(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; on failure raise with the tail of its output."""
    done = subprocess.run(argv, check=False, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {done.returncode}:\n{tail}")
    return done


def host_interpreter() -> str:
    """The interpreter a host install uses: the system ``python3`` (Debian's here),
    else the one below this virtual environment. Its venv must be usable by other
    users (the broker benchmark runs the shim as job users): pyenv's under /root is
    not."""
    for candidate in ("/usr/bin/python3", getattr(sys, "_base_executable", sys.executable)):
        if candidate and os.access(candidate, os.X_OK):
            done = subprocess.run(
                [candidate, "-c", "import sys, venv, ensurepip; print(sys.version_info >= (3, 9))"],
                check=False,
                capture_output=True,
                text=True,
            )
            if done.stdout.strip() == "True":
                return candidate
    sys.exit("no python3 >= 3.9 with venv and ensurepip to make a host install with")


def build_wheel(base: Path) -> Path:
    """Build cronsync's wheel from a copy of the checkout (nothing is written into it)."""
    src = base / "src"
    shutil.copytree(
        CHECKOUT / "agent",
        src / "agent",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"),
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (CHECKOUT / name).exists():
            shutil.copy2(CHECKOUT / name, src / name)
    wheels = base / "wheels"
    run_quiet(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    return next(wheels.glob("cronsync-*.whl"))


def make_venv(path: Path, python: str, *packages: str, upgrade_pip: bool = True) -> Path:
    """``python -m venv PATH``, its pip upgraded (as the README's host set-up does: a
    current pip writes a lighter console script) unless ``upgrade_pip`` is False, then
    ``PATH/bin/pip install PACKAGES``; return PATH."""
    run_quiet([python, "-m", "venv", str(path)])
    if upgrade_pip:
        run_quiet(
            [str(path / "bin/python"), "-m", "pip", "install", "-q", "--upgrade", "pip"],
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
    if packages:
        run_quiet(
            [str(path / "bin/python"), "-m", "pip", "install", "-q", *packages],
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
    return path


def pip_version(venv: Path) -> str:
    done = run_quiet([str(venv / "bin/python"), "-m", "pip", "--version"])
    return done.stdout.split()[1]


# --- moto and the broker, each in its own process -----------------------------------


class Moto:
    """moto's server on 127.0.0.1 in a process of its own (this venv's moto)."""

    def __init__(self, base: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", MOTO_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=aws_env(base),
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        port = self.proc.stdout.readline().strip()
        if not port.isdigit():
            self.stop()
            raise RuntimeError("moto's server did not start")
        self.url = f"http://127.0.0.1:{port}"

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class BrokerProcess:
    """``cronsync broker --config CONFIG`` of a host install, in its own process (so it
    does not share an interpreter lock with the timing harness), warm once it answers."""

    def __init__(self, python: str, config: Path, socket: Path, log: Path) -> None:
        self.socket = str(socket)
        self.log_path = log
        self.log = open(log, "ab")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [python, "-m", "cronsync.cli.main", "broker", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=no_aws_env(),
            cwd="/",
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the broker exited {self.proc.returncode}: {self.tail()}")
            try:
                if ask(self.socket, brokerwire.request(brokerwire.PING), 2.0)["ok"]:
                    break
            except BrokerUnreachable:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the broker did not answer: {self.tail()}")
            time.sleep(0.05)

    def status(self, field: str) -> int:
        """A ``/proc/PID/status`` figure in KiB (VmHWM, VmRSS)."""
        with open(f"/proc/{self.proc.pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- sandbox hosts -----------------------------------------------------------------


def git(*args: str, cwd: Path) -> None:
    run_quiet(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV})


def make_upstream(base: Path, files: Mapping[str, str]) -> Path:
    """Commit ``files`` (path -> text) to a work repository, push it to a bare remote;
    return the remote."""
    work, remote = base / "work", base / "remote.git"
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "jobs", cwd=work)
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=base)
    git("push", "-q", str(remote), "main", cwd=work)
    return remote


def job_toml(user: str, body: str, schedule: str = "0 3 * * *") -> str:
    return (
        f'description = "bench"\nowner = "bench@example.com"\nuser = "{user}"\n'
        f'schedule = "{schedule}"\n{body}'
    )


def aws_toml(url: str, credentials: Path) -> str:
    return (
        f'[aws]\nregion = "{REGION}"\nendpoint_url = "{url}"\n'
        f"credentials_file = {json.dumps(str(credentials))}\n"
    )


def credentials_file(base: Path) -> Path:
    """A root-only credentials file with dummy keys (what ``aws.credentials_file``
    must be)."""
    path = base / "aws-credentials"
    path.write_text("[default]\naws_access_key_id = bench\naws_secret_access_key = bench\n")
    path.chmod(0o600)
    return path


class Host:
    """One synced host sandbox (its own root and agent.toml) of an upstream; ``allowed``
    goes to ``users.allowed`` (root and system users run jobs only when named there)."""

    def __init__(
        self,
        base: Path,
        name: str,
        remote: Path,
        extra: str,
        must_exist: bool = False,
        allowed: Sequence[str] = (),
    ) -> None:
        self.root = base / name
        self.config = self.root / "etc/cronsync/agent.toml"
        self.config.parent.mkdir(parents=True)
        self.config.write_text(
            f'[repo]\nurl = "{remote}"\n[host]\nname = "bench-{name}"\ntimezone = "UTC"\n'
            f"[users]\nmust_exist = {json.dumps(must_exist)}\n"
            f"allowed = {json.dumps(list(allowed))}\n"
            f'[paths]\nroot = "{self.root}"\n{extra}'
        )
        outcome = run_sync(load_config(str(self.config)))
        assert outcome.record.result == "installed", outcome.record
        self.runs = self.root / "var/lib/cronsync/runs"
        self.socket = self.root / "run/cronsync/broker.sock"

    def argv(self, job: str) -> list[str]:
        return ["--root", str(self.root), job]

    def last(self, job: str) -> dict[str, Any]:
        return dict(read_last(self.runs, job).get("last_run") or {})

    def drop_logs(self) -> None:
        """Delete the run logs written so far (the big runs would fill the disk)."""
        shutil.rmtree(self.root / "var/log/cronsync", ignore_errors=True)


# --- timing ------------------------------------------------------------------------


def wall(argv: Sequence[str], env: Mapping[str, str], expect: int = 0) -> float:
    """Run ``argv`` to its end (output discarded); return its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        argv, check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - start
    if done.returncode != expect:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}")
    return elapsed


# label -> (argv, environment)
Commands = Mapping[str, tuple[Sequence[str], Mapping[str, str]]]


class Samples:
    """Wall times of commands run round-robin (noise hits them alike)."""

    def __init__(self, values: dict[str, list[float]]) -> None:
        self.values = values

    def median(self, label: str) -> float:
        return statistics.median(self.values[label])

    def diff(self, label: str, other: str) -> float:
        """The median of the per-round differences ``label - other`` (seconds)."""
        return statistics.median(a - b for a, b in zip(self.values[label], self.values[other]))

    def ratio(self, label: str, baseline: str) -> tuple[float, float, float]:
        """The median of the per-round ratios ``label / baseline`` (each round runs both
        back to back, so a load that drifts over the run hits both alike), and their
        25th and 75th percentiles (how much the noise moves it)."""
        rounds = [a / b for a, b in zip(self.values[label], self.values[baseline])]
        return (
            statistics.median(rounds),
            percentile(rounds, 0.25),
            percentile(rounds, 0.75),
        )


def interleaved(
    commands: Commands,
    repeat: int,
    warm: int = 2,
    expect: Optional[Mapping[str, int]] = None,
) -> Samples:
    """Run every command ``repeat`` times, round-robin; ``warm`` unmeasured rounds
    first (page cache, .pyc files, the broker's connections). ``expect``: label -> the
    exit code that command must give (0 for those not named)."""
    codes = expect or {}
    values: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(warm):
        for label, (argv, env) in commands.items():
            wall(argv, env, codes.get(label, 0))
    for n in range(repeat):
        for label, (argv, env) in commands.items():
            values[label].append(wall(argv, env, codes.get(label, 0)))
        if (n + 1) % 10 == 0:
            say(f"    {n + 1}/{repeat} rounds")
    return Samples(values)


def fmt_ratio(ratio: tuple[float, float, float]) -> str:
    """``median (p25-p75)`` of per-round ratios."""
    return f"{ratio[0]:.2f}x ({ratio[1]:.2f}-{ratio[2]:.2f})"
