"""The shim's work: running one job as cron does (``cronsync-run JOB``).

Owns the job as the installed release describes it (``jobspec``), one run's context
(``context``), the steps before and after the job (``steps``, ``after``: time-zone gate,
lock, jitter, secrets, run record, forwarding, metrics), the concurrency lock (``lock``;
``procs``: what /proc says of the processes it names; ``orphans``: runs whose shim was
killed while their job lives, for the CLI), starting and watching the process
(``process``), copying its output through masking
into the local log (``pump``, ``masking``, and ``secretforms``: the encoded forms of a
secret value), run records and their store (``record``,
``store``), the runs of a job's earlier users (``history``: for the CLI, not the shim),
and the whole run (``runner``).

On the shim's start-up path: nothing heavy at import time (no pathlib, typing, json,
subprocess; boto3 only for a job that needs AWS).

May import: ``cloud``, ``secrets``, ``host`` and below, but never ``repo`` (git) or
``agent``, not even through another part (a contract checks it).
"""
