"""Benchmark: the idle ``cronsync agent`` (CPU, resident memory) and a no-op cycle's CPU.

Issue 4's goals: the idle agent (interval 60 s, 100 jobs, nothing changing) uses under
1% of a core on average and under 60 MiB resident; a no-op cycle costs under 20 ms of CPU.

It builds a 100-job repository with a bare remote and a sandbox root in a temp dir
(``bench_sync``'s helpers), syncs once, then:

1. no-op cycle — in this process, ``run_sync(config)`` repeated (after one warm-up):
   ``getrusage`` user+sys of this process (RUSAGE_SELF) and of the git subprocesses
   (RUSAGE_CHILDREN) around each call, medians; the same for ``Agent.sync()`` (what the
   agent does per cycle: re-read the config, ``run_sync``, log, metrics hook);
2. idle agent — ``python -m cronsync.cli.main agent`` as a subprocess with ``[agent] interval``
   (no metrics, no CloudWatch: nothing leaves the machine), left to settle, then sampled
   every second for ``--seconds``: CPU from /proc/PID/stat (utime+stime; with the reaped
   git children's cutime+cstime as well) as an average % of one core, VmRSS (now and the
   largest seen while sampling) and VmHWM (peak since start) from /proc/PID/status;
3. baselines over the same window — an idle ``python -c "time.sleep()"`` and the same
   after importing what the agent imports (cronsync's agent modules and watchdog), so
   the agent's figures can be read as ratios on a shared, noisy machine.

Goals are printed next to the figures, never asserted. Not a test: run it by hand,
``python bench/bench_agent.py [--seconds 120] [--interval 60s]`` (a quick look:
``--seconds 30 --interval 10s``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bench_sync import CONFIG, make_repo
from benchkit import Context, Table
from cronsync.agent.loop import Agent
from cronsync.host.config import load_config
from cronsync.host.sync import run_sync

JOBS = 100
SETTLE_SECONDS = 5.0
CYCLES = 20
STOP_TIMEOUT = 10.0
GOAL_CPU_PERCENT = 1.0
GOAL_RSS_MIB = 60.0
GOAL_CYCLE_MS = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
# A line of the agent's log in a file: TIMESTAMP cronsync agent: [LEVEL: ]sync RESULT
SYNC_LINE = re.compile(r"^\S+Z cronsync agent: (?:(?:error|warning): )?sync (\w+)", re.MULTILINE)
AGENT_IMPORTS = (
    "import cronsync.cli.main, cronsync.agent.loop, cronsync.agent.control, cronsync.host.sync, "
    "cronsync.agent.watch, watchdog.observers"
)


def git_env() -> None:
    """The same git identity and isolation as bench_sync."""
    os.environ.setdefault("GIT_CONFIG_GLOBAL", "/dev/null")
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")


# -- the no-op cycle, in this process ---------------------------------------------------


@dataclass(frozen=True)
class CycleCost:
    """Medians of one cycle, in milliseconds."""

    self_ms: float
    children_ms: float
    total_ms: float
    wall_ms: float


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def cycle_cost(func: Callable[[], object], repeat: int) -> CycleCost:
    """Run ``func`` once to warm up, then ``repeat`` times; median CPU and wall time."""
    func()
    own, children, total, wall = [], [], [], []
    for _ in range(repeat):
        self0, child0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        func()
        elapsed = time.perf_counter() - start
        self_s = _cpu(resource.RUSAGE_SELF) - self0
        child_s = _cpu(resource.RUSAGE_CHILDREN) - child0
        own.append(self_s)
        children.append(child_s)
        total.append(self_s + child_s)
        wall.append(elapsed)
    med = statistics.median
    return CycleCost(med(own) * 1e3, med(children) * 1e3, med(total) * 1e3, med(wall) * 1e3)


def noop_costs(config_file: Path, repeat: int) -> tuple[CycleCost, CycleCost]:
    """The cost of ``run_sync`` and of the agent's whole cycle with nothing new."""
    config = load_config(str(config_file))

    def plain() -> None:
        result = run_sync(config).record.result
        assert result == "unchanged", result

    agent = Agent(str(config_file))

    def agent_cycle() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the agent logs every cycle
            outcome = agent.sync()
        assert outcome is not None and outcome.record.result == "unchanged", outcome

    return cycle_cost(plain, repeat), cycle_cost(agent_cycle, repeat)


# -- the idle processes, sampled from /proc ---------------------------------------------


def cpu_ticks(pid: int) -> tuple[int, int]:
    """Return (utime+stime, utime+stime+cutime+cstime) of ``pid`` in clock ticks."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; fields from 3
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return utime + stime, utime + stime + cutime + cstime


def status_fields(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) and Threads of ``pid``."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            found[key] = int(value.split()[0])
    return found


@dataclass
class Sampled:
    """One process watched over the sampling window."""

    name: str
    proc: subprocess.Popen[bytes]
    start_ticks: tuple[int, int] = (0, 0)
    end_ticks: tuple[int, int] = (0, 0)
    rss_max_kib: int = 0
    last: Optional[dict[str, int]] = None

    def begin(self) -> None:
        self.start_ticks = cpu_ticks(self.proc.pid)
        self.sample()

    def sample(self) -> None:
        self.last = status_fields(self.proc.pid)
        self.rss_max_kib = max(self.rss_max_kib, self.last["VmRSS"])

    def end(self) -> None:
        self.sample()
        self.end_ticks = cpu_ticks(self.proc.pid)

    def cpu_percent(self, seconds: float, children: bool) -> float:
        index = 1 if children else 0
        ticks = self.end_ticks[index] - self.start_ticks[index]
        return ticks / CLK_TCK / seconds * 100.0


def stop(proc: subprocess.Popen[bytes]) -> tuple[Optional[int], float]:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; return (exit code, seconds to exit)."""
    if proc.poll() is not None:
        return proc.returncode, 0.0
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code: Optional[int] = proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None  # killed
    return code, time.monotonic() - start


def sync_results(log: Path, offset: int) -> list[str]:
    """The results of the agent's syncs logged after ``offset``."""
    text = log.read_bytes()[offset:].decode(errors="replace")
    return SYNC_LINE.findall(text)


@dataclass(frozen=True)
class IdleRun:
    """What sampling the idle agent and its baselines found."""

    seconds: float
    processes: list[Sampled]
    cycles: list[str]
    exit_code: Optional[int]
    exit_seconds: float
    log_tail: str


def idle_run(config_file: Path, log: Path, seconds: float, settle: float) -> IdleRun:
    """Start the agent and the baselines, settle, sample, stop them."""
    sleep_for = f"{settle + seconds + 60:.0f}"
    commands = [
        ("cronsync agent", [sys.executable, "-m", "cronsync.cli.main", "agent", "--config"]),
        ("python sleep", [sys.executable, "-c", f"import time; time.sleep({sleep_for})"]),
        (
            "python + agent imports",
            [sys.executable, "-c", f"{AGENT_IMPORTS}; import time; time.sleep({sleep_for})"],
        ),
    ]
    commands[0][1].append(str(config_file))
    processes: list[Sampled] = []
    with log.open("wb") as out:
        try:
            for name, argv in commands:
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
                processes.append(Sampled(name, proc))
            time.sleep(settle)
            for sampled in processes:
                if sampled.proc.poll() is not None:
                    raise SystemExit(
                        f"{sampled.name} exited ({sampled.proc.returncode}) before sampling:\n"
                        + log.read_text(errors="replace")[-2000:]
                    )
            offset = log.stat().st_size
            start = time.monotonic()
            for sampled in processes:
                sampled.begin()
            deadline = start + seconds
            while (now := time.monotonic()) < deadline:
                time.sleep(min(1.0, deadline - now))
                for sampled in processes:
                    sampled.sample()
            for sampled in processes:
                sampled.end()
            elapsed = time.monotonic() - start
            cycles = sync_results(log, offset)
        finally:
            results = [stop(sampled.proc) for sampled in processes]
    tail = log.read_text(errors="replace").splitlines()[-3:]
    code, exit_seconds = results[0]
    return IdleRun(elapsed, processes, cycles, code, exit_seconds, "\n".join(tail))


# -- the report ---------------------------------------------------------------------


def ratio_text(value: float, baseline: float, unit: str) -> str:
    """``value / baseline`` as a ratio, or why there is none (a baseline of 0)."""
    if baseline <= 0:
        return f"n/a (baseline 0 {unit})"
    return f"{value / baseline:.2f}x"


def goals_table(plain: CycleCost, idle: IdleRun) -> Table:
    """The three goals, each figure next to its in-run baseline, the ratio and a verdict."""
    mib = 1024.0
    agent, sleeper, imports = idle.processes
    table = Table()
    cpu = agent.cpu_percent(idle.seconds, True)
    base_cpu = sleeper.cpu_percent(idle.seconds, True)
    table.add(
        "idle agent CPU (git included) / a sleeping python",
        ratio_text(cpu, base_cpu, "%"),
        f"< {GOAL_CPU_PERCENT:g} % of a core",
        cpu < GOAL_CPU_PERCENT,
        f"{cpu:.3f} % / {base_cpu:.3f} % over {idle.seconds:.0f} s",
    )
    hwm = (agent.last or {}).get("VmHWM", 0) / mib
    base_rss = imports.rss_max_kib / mib
    table.add(
        "idle agent peak RSS / a python holding the agent's imports",
        ratio_text(hwm, base_rss, "MiB"),
        f"< {GOAL_RSS_MIB:g} MiB",
        hwm < GOAL_RSS_MIB,
        f"{hwm:.1f} MiB / {base_rss:.1f} MiB",
    )
    table.add(
        "no-op cycle CPU (git included) / its wall time",
        ratio_text(plain.total_ms, plain.wall_ms, "ms"),
        f"< {GOAL_CYCLE_MS:g} ms CPU",
        plain.total_ms < GOAL_CYCLE_MS,
        f"{plain.total_ms:.1f} ms / {plain.wall_ms:.1f} ms",
    )
    return table


def report(args: argparse.Namespace, plain: CycleCost, whole: CycleCost, idle: IdleRun) -> None:
    mib = 1024.0
    agent, sleeper, imports = idle.processes
    print(
        f"cronsync idle agent: {JOBS} jobs, interval {args.interval}, splay {args.splay}, "
        f"{idle.seconds:.0f} s sampled after {args.settle:.0f} s settling; "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    tick = 100.0 / CLK_TCK / idle.seconds
    print(f"(CPU from /proc/PID/stat: one clock tick = {tick:.4f} % of a core over the window)")
    print()
    print(
        f"{'idle process':<24} {'CPU %core':>9} {'+children':>9} {'RSS MiB':>8} "
        f"{'max RSS':>8} {'VmHWM':>7} {'threads':>7}"
    )
    for sampled in idle.processes:
        last = sampled.last or {}
        print(
            f"{sampled.name:<24} {sampled.cpu_percent(idle.seconds, False):>9.3f} "
            f"{sampled.cpu_percent(idle.seconds, True):>9.3f} "
            f"{last.get('VmRSS', 0) / mib:>8.1f} {sampled.rss_max_kib / mib:>8.1f} "
            f"{last.get('VmHWM', 0) / mib:>7.1f} {last.get('Threads', 0):>7}"
        )
    print(f"{'goal':<24} {'< ' + str(GOAL_CPU_PERCENT):>9} {'':>9} {'':>8} {'< 60':>8}")
    counts = {result: idle.cycles.count(result) for result in sorted(set(idle.cycles))}
    print(
        f"agent syncs while sampled: {len(idle.cycles)} "
        f"({', '.join(f'{k} x{v}' for k, v in counts.items()) or 'none'}); "
        f"SIGTERM -> exit {idle.exit_code if idle.exit_code is not None else 'KILLED'} "
        f"in {idle.exit_seconds:.2f} s"
    )
    print(
        f"agent RSS vs python sleep: {agent.rss_max_kib / max(1, sleeper.rss_max_kib):.1f}x; "
        f"vs its imports alone: +{(agent.rss_max_kib - imports.rss_max_kib) / mib:.1f} MiB"
    )
    print()
    print(
        f"{'no-op cycle, median of ' + str(args.cycles):<32} {'self ms':>8} {'git ms':>8} "
        f"{'CPU ms':>8} {'wall ms':>8}"
    )
    for name, cost in (("run_sync(config)", plain), ("Agent.sync() (reload+sync)", whole)):
        print(
            f"{name:<32} {cost.self_ms:>8.1f} {cost.children_ms:>8.1f} "
            f"{cost.total_ms:>8.1f} {cost.wall_ms:>8.1f}"
        )
    print(f"{'goal':<32} {'':>8} {'':>8} {'< ' + str(int(GOAL_CYCLE_MS)):>8}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="sampling window")
    parser.add_argument("--interval", default="60s", help="[agent] interval (default 60s)")
    parser.add_argument("--splay", default="10s", help="[agent] splay (default 10s)")
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS, help="seconds")
    parser.add_argument("--cycles", type=int, default=CYCLES, help="no-op cycles measured")
    args = parser.parse_args(argv)
    context = Context(f"bench_agent.py --seconds {args.seconds:g} --interval {args.interval}")
    git_env()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        remote = make_repo(base, JOBS)
        config_file = base / "agent.toml"
        config_file.write_text(
            CONFIG.format(remote=remote, root=base / "root")
            + f'[agent]\ninterval = "{args.interval}"\nsplay = "{args.splay}"\n'
        )
        first = run_sync(load_config(str(config_file)))
        assert first.record.result == "installed", first.record
        print("measuring no-op cycles in this process ...", file=sys.stderr)
        plain, whole = noop_costs(config_file, args.cycles)
        print(
            f"sampling the idle agent for {args.seconds:.0f} s "
            f"(after {args.settle:.0f} s settling) ...",
            file=sys.stderr,
        )
        idle = idle_run(config_file, base / "agent.log", args.seconds, args.settle)
        report(args, plain, whole, idle)
        goals_table(plain, idle).print(context)
        if idle.exit_code != 0:
            print(f"agent log tail:\n{idle.log_tail}")


if __name__ == "__main__":
    main(sys.argv[1:])
