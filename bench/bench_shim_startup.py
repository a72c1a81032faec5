"""Benchmark: where the shim's start-up goes, and what its console script costs.

Issue 9 wants ``cronsync-run`` with no secrets at <= 1.5x ``python -I -c pass``. This
breaks the installed console script's time down (in a host venv: ``python3 -m venv``
of the system interpreter, cronsync's wheel installed by that venv's own pip), then
measures two variants of the console script, each a venv of its own, all interleaved
round-robin with the baselines in one run:

====  ==================================================================================
rung  console script
====  ==================================================================================
0     as installed by the venv's own pip (Debian's pip 23.0.1 writes one that imports
      ``re``, hence ``enum``, ``functools``, ``collections`` ... first)
1     the one a current pip writes (no ``import re``)
2     the launcher ``cronsync install-shim`` writes, which the README's host set-up uses:
      ``python -I -S`` with cronsync's site-packages on ``sys.path`` by itself: no
      ``site``, no ``.pth`` files, no ``sitecustomize``
====  ==================================================================================

Every rung ends through ``cronsync.cli.shim.launch``, which skips the interpreter's
teardown (``os._exit`` once the run is written; about 4 ms here). The shim's own
start-up changes it once measured here (no ``signal``/``enum``, no ``functools``, no
``contextlib``, no ``warnings``, a prune that stats only old logs) are in the code now.
The venvs are made ``--no-deps`` (the no-secrets path imports nothing outside the
standard library; bench_shim.py measures the full install). Each rung runs the same
job ``true`` on one sandbox host that keeps 100 run records (the steady state).

Not a test: ``python bench/bench_shim_startup.py [--quick] [--rounds N]`` (60 rounds,
20 with ``--quick``). Markdown on stdout, progress on stderr.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchkit import (
    Context,
    Host,
    Table,
    build_wheel,
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

KEEP_RUNS = 100
NEW_PIP_SCRIPT = """\
#!{python}
import sys
from cronsync.cli.shim import launch
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(launch())
"""
# What `cronsync install-shim` does, run by the rung's own interpreter (its venv holds
# cronsync without dependencies, so the whole `cronsync` command cannot start there;
# bench_shim.py runs the command itself in a full install).
INSTALL_SHIM = (
    "import sys\n"
    "from cronsync.host import shimbundle as b, shimlauncher as s\n"
    "python, site = s.interpreter(), s.installed_site_dir()\n"
    "text = s.launcher_text(python, site, b.install_bundle(python, site, None)[0])\n"
    "s.install_launcher(sys.argv[1], text, None)\n"
)
MODULES = (
    "import sys\n"
    "from cronsync.cli.shim import main\n"
    "rc = main(sys.argv[1:])\n"
    "print(' '.join(sorted(sys.modules)))\n"
    "sys.exit(rc)\n"
)


class Rung:
    """A venv holding cronsync as installed, then patched."""

    def __init__(self, base: Path, name: str, interpreter: str, wheel: Path) -> None:
        self.name = name
        self.venv = make_venv(
            base / f"venv-{name}", interpreter, "--no-deps", str(wheel), upgrade_pip=False
        )
        self.python = str(self.venv / "bin/python")
        self.script = self.venv / "bin/cronsync-run"
        purelib = run_quiet(
            [self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        ).stdout.strip()
        self.purelib = Path(purelib)
        self.package = self.purelib / "cronsync"

    def compile(self) -> None:
        run_quiet([self.python, "-m", "compileall", "-q", str(self.package)])


def new_pip_script(rung: Rung) -> None:
    rung.script.write_text(NEW_PIP_SCRIPT.format(python=rung.python))


def install_shim(rung: Rung) -> None:
    run_quiet([rung.python, "-c", INSTALL_SHIM, str(rung.script)])


LADDER: list[tuple[str, str, Callable[[Rung], None]]] = [
    ("1", "console script of a current pip (no `import re`; the README's set-up)", new_pip_script),
    (
        "2",
        "the launcher `cronsync install-shim` writes (`python -I -S`: no `site`, `.pth`, "
        "`sitecustomize`; the README's set-up)",
        install_shim,
    ),
]


def build_rungs(base: Path, interpreter: str, wheel: Path) -> dict[str, Rung]:
    rungs = {"0": Rung(base, "0", interpreter, wheel)}
    for n, (label, _what, _patch) in enumerate(LADDER):
        say(f"  rung {label} ...")
        rung = Rung(base, label, interpreter, wheel)
        for _l, _w, patch in LADDER[: n + 1]:
            patch(rung)
        rung.compile()
        rungs[label] = rung
    return rungs


def imported(rung: Rung, host: Host, env: dict[str, str]) -> set[str]:
    """The modules a run of the job leaves in ``sys.modules``, run like the rung runs
    (flags, sys.path), minus nothing."""
    flags = ["-I", "-S"] if rung.script.read_text().startswith(f"#!{rung.python} -IS") else []
    setup = f"import sys; sys.path.append({str(rung.purelib)!r})\n" if flags else ""
    done = subprocess.run(
        [rung.python, *flags, "-c", setup + MODULES, *host.argv("noop")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return set(done.stdout.split())


def syscalls(argv: list[str], env: dict[str, str], base: Path) -> int:
    """How many system calls ``argv`` makes (strace -f -c), -1 without strace."""
    if not shutil.which("strace"):
        return -1
    out = base / "strace.txt"
    subprocess.run(
        ["strace", "-f", "-c", "-o", str(out), *argv],
        check=False,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for line in out.read_text().splitlines():
        if line.rstrip().endswith("total"):
            return int(line.split()[3])
    return -1


def perf_stat(argv: list[str], env: dict[str, str]) -> str:
    """CPU time and page faults of ``argv`` (``perf stat -r 20``, its mean), or ""."""
    if not shutil.which("perf"):
        return ""
    done = subprocess.run(
        ["perf", "stat", "-x", ",", "-r", "20", "-e", "task-clock,page-faults", *argv],
        check=False,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found = {}
    for line in done.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in ("task-clock", "page-faults"):
            found[fields[2]] = fields[0]
    if len(found) < 2:
        return ""
    return f"{float(found['task-clock']):.1f} ms CPU, {found['page-faults']} page faults"


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    repeat = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 20 if quick else 60
    context = Context("bench_shim_startup.py" + (" --quick" if quick else ""))
    table = Table()
    env = no_aws_env()
    with tempfile.TemporaryDirectory(prefix="bench-startup-", dir="/tmp") as tmp:
        base = Path(tmp)
        interpreter = host_interpreter()
        say(f"building the wheel and the rungs' venvs ({interpreter}) ...")
        wheel = build_wheel(base)
        rungs = build_rungs(base, interpreter, wheel)
        bare = base / "venv-no-setuptools"
        run_quiet([interpreter, "-m", "venv", "--without-pip", str(bare)])
        user = pwd.getpwuid(os.geteuid()).pw_name
        remote = make_upstream(base, {"jobs/noop.toml": job_toml(user, 'command = ["true"]\n')})
        host = Host(base, "host", remote, "", allowed=[user])  # root must be named
        control = rungs["0"]
        say(f"{KEEP_RUNS} runs first (the records a host keeps) ...")
        for _ in range(KEEP_RUNS):
            wall([str(control.script), *host.argv("noop")], env)
        for rung in rungs.values():  # each works, and leaves the job succeeded
            wall([str(rung.script), *host.argv("noop")], env)
            assert host.last("noop").get("status") == "succeeded"
        py = control.python
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "true": (["true"], env),
            "-I -S pass": ([py, "-I", "-S", "-c", "pass"], env),
            "-I pass": ([py, "-I", "-c", "pass"], env),
            "-I pass, no setuptools": ([str(bare / "bin/python"), "-I", "-c", "pass"], env),
            "-I import re": ([py, "-I", "-c", "import re"], env),
            "-I import re + shim modules": (
                [
                    py,
                    "-I",
                    "-c",
                    "import os, re, cronsync.cli.shim, cronsync.run.runner; os._exit(0)",
                ],
                env,
            ),
        }
        last = rungs["2"]
        commands["-I -S import shim modules, rung 2"] = (
            [
                last.python,
                "-I",
                "-S",
                "-c",
                f"import sys; sys.path.append({str(last.purelib)!r}); "
                "import os, cronsync.cli.shim, cronsync.run.runner; os._exit(0)",
            ],
            env,
        )
        for label, rung in rungs.items():
            commands[f"rung {label}"] = ([str(rung.script), *host.argv("noop")], env)
        say(f"timing {len(commands)} commands, {repeat} rounds ...")
        samples = interleaved(commands, repeat)
        med = samples.median
        base_pass = med("-I pass")

        def part(what: str, seconds: float, note: str = "") -> None:
            table.add(what, f"{seconds / base_pass:+.2f}x", "", None, f"{ms(seconds)}{note}")

        say("where the time of rung 0 (as installed) goes:")
        table.add(
            "**as installed** `cronsync-run`, job `true` / `python -I -c pass`",
            fmt_ratio(samples.ratio("rung 0", "-I pass")),
            "<= 1.5x",
            samples.ratio("rung 0", "-I pass")[0] <= 1.5,
            f"{ms(med('rung 0'))} / {ms(base_pass)}",
        )
        diff = samples.diff
        part("- interpreter without site (`python -I -S -c pass`)", med("-I -S pass"))
        part(
            "- site: of which setuptools' `distutils-precedence.pth`",
            diff("-I pass", "-I pass, no setuptools"),
        )
        part(
            "- site: the rest (site.py, Debian's sitecustomize/apport hook, venv)",
            diff("-I pass, no setuptools", "-I -S pass"),
        )
        part("- the console script's `import re`", diff("-I import re", "-I pass"))
        part(
            "- importing the shim's modules (after `re`)",
            diff("-I import re + shim modules", "-I import re"),
        )
        part(
            "- the run: release, record, lock, log, spawn + wait `true`, record, prune",
            diff("rung 0", "-I import re + shim modules"),
            f" (of which `true` itself {ms(med('true'))})",
        )
        previous = "rung 0"
        for label, what, _patch in LADDER:
            key = f"rung {label}"
            table.add(
                f"rung {label}: + {what}",
                fmt_ratio(samples.ratio(key, "-I pass")),
                "<= 1.5x",
                samples.ratio(key, "-I pass")[0] <= 1.5,
                f"{ms(med(key))}; gain {ms(diff(previous, key))}",
            )
            previous = key
        say("where the time of rung 2 goes:")
        part("rung 2: - interpreter without site", med("-I -S pass"))
        part(
            "rung 2: - importing the shim's modules",
            diff("-I -S import shim modules, rung 2", "-I -S pass"),
        )
        part(
            "rung 2: - the run (job `true` included)",
            diff("rung 2", "-I -S import shim modules, rung 2"),
        )
        baseline_modules = set(
            run_quiet([py, "-I", "-c", "import sys; print(' '.join(sys.modules))"]).stdout.split()
        )
        for label in ("0", "1", "2"):
            mods = imported(rungs[label], host, env)
            extra = sorted(m for m in mods - baseline_modules if not m.startswith("cronsync"))
            ours = len([m for m in mods if m.startswith("cronsync")])
            calls = syscalls([str(rungs[label].script), *host.argv("noop")], env, base)
            cpu = perf_stat([str(rungs[label].script), *host.argv("noop")], env)
            if label == "0":
                extra = sorted([*extra, "re (the console script)"])
            context.notes.append(
                f"rung {label}: {ours} cronsync modules; standard library beyond "
                f"`python -I -c pass`: {', '.join(extra) or 'none'}; {calls} system calls"
                f" (strace -f -c, the job included); perf stat: {cpu or 'n/a'}"
            )
        calls = syscalls([py, "-I", "-c", "pass"], env, base)
        cpu = perf_stat([py, "-I", "-c", "pass"], env)
        context.notes.append(
            f"`python -I -c pass`: {calls} system calls; perf stat: {cpu or 'n/a'}"
        )
        context.notes.append(
            f"Venvs: `{interpreter} -m venv` with its own pip {pip_version(control.venv)} "
            "and setuptools (whose .pth runs at every start), as on a host; cronsync's "
            "wheel `pip install --no-deps`-ed."
        )
    table.print(context)


if __name__ == "__main__":
    main(sys.argv[1:])
