"""Benchmark: what a fleet lease adds to a job's start (issue 11: <= 50 ms).

One sandbox host (its own root and agent.toml with ``[fleet] table``) of this checkout's
interpreter, its broker (``cronsync broker``) and moto (127.0.0.1) each in a process of
their own, the fleet table in moto. Timed, round-robin, medians of many rounds:

* ``python -I -c pass`` (the interpreter's floor, for context);
* ``cronsync-run plain``: a job ``true`` with ``run_on = "every-host"`` (the default);
* ``cronsync-run fleet``: the same job with ``run_on = "one-host"`` (forbid): the shim
  asks the broker, which makes one conditional UpdateItem, the job runs, the shim asks
  the broker to release the lease (a second UpdateItem).

Before each fleet start the lease item is deleted (untimed), so every start wins, as the
one host that runs an occurrence does. The verdict is on the median of the per-round
differences fleet - plain. Prints the load average and the CPU count: on a shared
machine the figures move with the load.

Not a test: ``python bench/bench_fleet_lease.py [--quick]``. Needs no root and no network
beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import pwd
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from benchkit import (
    BrokerProcess,
    Context,
    Host,
    Moto,
    Table,
    aws_toml,
    credentials_file,
    job_toml,
    loadavg,
    make_upstream,
    ms,
    no_aws_env,
    say,
    wall,
)
from helpers.fleettable import create_fleet_table

TABLE = "cronsync-fleet-bench"
GOAL = 0.050  # seconds a lease may add to a start


def main(argv: list[str]) -> None:
    rounds = 15 if "--quick" in argv else 40
    context = Context("bench_fleet_lease.py" + (" --quick" if "--quick" in argv else ""))
    table = Table()
    me = pwd.getpwuid(os.geteuid()).pw_name
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir="/tmp") as tmp:
        base = Path(tmp)
        moto = Moto(base)
        broker = None
        try:
            create_fleet_table(moto.url, TABLE)
            every = 'command = ["true"]\n'
            remote = make_upstream(
                base,
                {
                    "jobs/plain.toml": job_toml(me, every, "* * * * *"),
                    "jobs/fleet.toml": job_toml(
                        me, every + 'run_on = "one-host"\ntimezone = "UTC"\n', "* * * * *"
                    ),
                },
            )
            extra = aws_toml(moto.url, credentials_file(base)) + f'[fleet]\ntable = "{TABLE}"\n'
            host = Host(base, "a", remote, extra, allowed=[me])
            broker = BrokerProcess(sys.executable, host.config, host.socket, base / "broker.log")
            shim = [sys.executable, "-m", "cronsync.cli.shim", *host.argv("{job}")]
            env = no_aws_env()
            dynamodb = moto.client("dynamodb")
            key = {"pk": {"S": "job#fleet"}, "sk": {"S": "lease"}}
            samples: dict[str, list[float]] = {"floor": [], "plain": [], "fleet": []}
            say(f"{rounds} rounds (+2 warm) ...")
            for n in range(rounds + 2):
                dynamodb.delete_item(TableName=TABLE, Key=key)
                times = {
                    "floor": wall([sys.executable, "-I", "-c", "pass"], env),
                    "plain": wall([a.replace("{job}", "plain") for a in shim], env),
                    "fleet": wall([a.replace("{job}", "fleet") for a in shim], env),
                }
                if n >= 2:
                    for label, value in times.items():
                        samples[label].append(value)
            won = host.last("fleet")
            assert won.get("status") == "succeeded", won
            assert won["extra"]["fleet"]["token"] >= 1, won
        finally:
            if broker is not None:
                broker.stop()
            moto.stop()
    diffs = [f - p for f, p in zip(samples["fleet"], samples["plain"])]
    ratios = [f / p for f, p in zip(samples["fleet"], samples["plain"])]
    added = statistics.median(diffs)
    table.add("python -I -c pass (floor)", value=ms(statistics.median(samples["floor"])))
    table.add("start, every-host job (baseline)", value=ms(statistics.median(samples["plain"])))
    table.add(
        "start, one-host job (lease won, released)",
        ratio=f"{statistics.median(ratios):.2f}x",
        target="lease adds <= 50 ms",
        ok=added <= GOAL,
        value=f"{ms(statistics.median(samples['fleet']))}; added {ms(added)}",
    )
    context.notes.append(f"CPUs: {os.cpu_count()}; load average at the end: {loadavg()}.")
    table.print(context)


if __name__ == "__main__":
    main(sys.argv[1:])
