"""This host: its config, its installed release and cron file, and the sync cycle.

Owns ``agent.toml`` (``config``, with the ``[aws]`` settings and the boto3 client
factory in ``awsclients``), facts about the machine (``hostinfo``), building a release
for this host (``build``), installing it atomically (``install``), the state file
(``statefile``), the sync itself (``sync``: lock, fetch, export, validate, install,
record) and what ``plan``/``status`` read of the host (``view``).

May import: ``repo``, ``crontab``, ``files``, ``core``, ``secretscan``.
"""
