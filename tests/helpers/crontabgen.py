"""A generated legacy crontab of any size, laid out as a host root (for the import
benchmark, ``bench/bench_import.py``, and the test that pins the import's output).

The lines are a realistic mix, as in tests/data/crontabs: plain commands, shell lines
with redirects, pipes and ``&&``, inline secrets (password flags, URL credentials, AWS
keys, secret-named variables), stdin via ``%``, macros, tabs as separators,
environment lines, comments, commented-out jobs and programs many lines share (so job
names collide). Every line is one cron accepts: the file is imported, not ignored.
"""

from __future__ import annotations

from pathlib import Path

PASSWD = "root:x:0:0:root:/root:/bin/bash\nbatch:x:1001:1001::/home/batch:/bin/bash\n"
HEADER = ("SHELL=/bin/sh", "PATH=/usr/bin:/bin", "DB_PASSWORD=hunter2-bench")


def generated_line(n: int) -> str:
    """Return the ``n``-th generated line (after the header)."""
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
        f"{minute}\t{hour}\t*\t*\t0\troot\tnice -n 10 /usr/bin/find /tmp/t{n} -mtime +7 -delete",
        f"@hourly root flock -n /run/lock/sync{n % 31}.lock /usr/local/sbin/sync >/dev/null 2>&1",
        f"15 9-17/2 * * 1-5 batch cd /srv/rep && ./build.sh --token=tk{n}abcdEFGH | logger",
        f"*/15 * * * * batch AWS_SECRET_ACCESS_KEY=k{n}Zq9x8w7v6u5t4s3r2q1p0o9n8m7l6 aws s3 ls",
    )
    return kinds[n % len(kinds)]


def make_generated_host(base: Path, lines: int) -> Path:
    """Write a host root below ``base`` (``base/host``) whose ``/etc/crontab`` holds
    ``lines`` lines (the header's three included), with ``etc/passwd`` (root, batch)
    and ``etc/timezone`` (UTC); return the root."""
    root = base / "host"
    (root / "etc/cron.d").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/timezone").write_text("UTC\n")
    body = [*HEADER, *(generated_line(n) for n in range(lines - len(HEADER)))]
    (root / "etc/crontab").write_text("\n".join(body) + "\n")
    return root
