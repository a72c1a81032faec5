"""The shim's work: running one job as cron does (``cronsync-run JOB``).

Owns the job as the installed release describes it (``jobspec``), one run's context
(``context``), the steps before and after the job (``steps``, ``after``: time-zone gate,
lock, jitter, secrets, run record, forwarding, metrics), the concurrency lock (``lock``),
starting and watching the process (``process``), copying its output through masking
into the local log (``pump``, ``masking``), run records and their store (``record``,
``store``), and the whole run (``runner``).

On the shim's start-up path: nothing heavy at import time (no pathlib, typing, json,
subprocess; boto3 only for a job that needs AWS).

May import: ``cloud``, ``secrets``, ``host`` and below, but never ``repo`` (git) or
``agent``, not even through another part (a contract checks it).
"""
