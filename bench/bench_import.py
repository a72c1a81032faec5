"""Benchmark: ``cronsync import`` of a 10,000-line crontab (the target is under 2 s).

Writes a system crontab of N lines (default 10,000) into a temp host root: a realistic
mix of plain commands, shell lines with redirects, inline secrets (password flags, env
assignments, URL credentials), stdin via ``%``, macros, environment lines, comments,
commented-out jobs and duplicates. Then measures, in this one process:

* inventory — read the file and run ``cronsync inventory``'s reader on it;
* import    — the whole import: inventory, plan, secrets file, every job file and
  MIGRATION.md written (``--include-commented``).

It prints the best of a few runs in seconds and the ratio of import to inventory on
the same input (the machines are shared and noisy: compare ratios). Not a test: run it
by hand, ``python bench/bench_import.py [LINES]``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from cronsync.crontab.hostfiles import read_host_crontabs
from cronsync.crontab.inventory import HostFacts, inventory_files
from cronsync.migrate.importer import ImportRequest, run_import
from cronsync.migrate.importmodel import ImportOptions

RUNS = 3
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
PASSWD = "root:x:0:0:root:/root:/bin/bash\nbatch:x:1001:1001::/home/batch:/bin/bash\n"


def line(n: int) -> str:
    """The n-th line of the generated crontab."""
    minute, hour = n % 60, n % 24
    kinds = (
        f"{minute} {hour} * * * root /usr/local/bin/job{n}.sh --full",
        f"{minute} */2 * * mon-fri batch /opt/batch/run{n}.sh >> /var/log/run{n}.log 2>&1",
        f"*/5 * * * * root mysqldump -uroot -ppw{n}secret shop{n} > /backup/shop{n}.sql",
        f"@daily batch php /var/www/app{n}/artisan schedule:run",
        f"# {minute} 3 * * * root /opt/old/retired{n}.sh",
        f"0 7 * * 1-5 batch mail -s 'Report {n}' team@example.com%Hello,%report {n}\\%%",
        f"{minute} {hour} 1,15 * * root curl -s https://user:tok{n}x@api.example.com/ping",
        f"MAILTO=owner{n}@example.com" if n % 50 == 7 else f"# note {n}",
        f"{minute} {hour} * jan-jun * batch python3 /srv/tasks/task{n % 97}.py --day",
        f"{minute} {hour} * * * root test -x /usr/bin/x && cd /srv/{n} && ./go.sh",
    )
    return kinds[n % len(kinds)]


def make_host(base: Path, lines: int) -> Path:
    root = base / "host"
    (root / "etc/cron.d").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/timezone").write_text("UTC\n")
    body = ["SHELL=/bin/sh", "PATH=/usr/bin:/bin", "DB_PASSWORD=hunter2-bench"]
    body += [line(n) for n in range(lines - len(body))]
    (root / "etc/crontab").write_text("\n".join(body) + "\n")
    return root


def time_inventory(root: Path) -> float:
    started = time.perf_counter()
    files = read_host_crontabs(root)
    inventory_files(files, HostFacts(NOW, ZoneInfo("UTC"), frozenset({"root", "batch"})))
    return time.perf_counter() - started


def time_import(root: Path, base: Path, run: int) -> tuple[float, int]:
    request = ImportRequest(
        into=base / f"repo{run}",
        root=root,
        timezone="UTC",
        options=ImportOptions(include_commented=True),
        secrets_file=base / f"secrets{run}.toml",
        now=NOW,
    )
    started = time.perf_counter()
    result = run_import(request)
    return time.perf_counter() - started, len(result.plan.jobs)


def main(argv: list[str]) -> int:
    lines = int(argv[1]) if len(argv) > 1 else 10_000
    base = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        root = make_host(base, lines)
        inventory = min(time_inventory(root) for _ in range(RUNS))
        runs = [time_import(root, base, run) for run in range(RUNS)]
        full = min(seconds for seconds, _jobs in runs)
        jobs = runs[0][1]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{lines} lines, {jobs} jobs written (best of {RUNS})")
    print(f"inventory alone: {inventory:.3f} s")
    print(f"import:          {full:.3f} s  ({full / inventory:.2f}x inventory)")
    print("target: import under 2 s:", "ok" if full < 2.0 else "MISSED")
    return 0 if full < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
