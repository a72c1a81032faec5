"""This host: its config, its installed release and cron file, and the sync cycle.

Owns ``agent.toml`` (``config``, with the ``[aws]`` settings and the boto3 client
factory in ``awsclients``, the signed-commit keys in ``signingconfig``), facts about
the machine (``hostinfo``), building a release for this host (``build``), installing it
atomically (``install``), each job's run and log folders for its user, an earlier
user's runs set aside (``jobdirs``), the state file (``statefile``), the sync itself
(``sync``: lock, fetch, verify the signature, export, validate, install, record) and what
``plan``/``status`` read of the host (``view``), and a repository's jobs compiled for
``cronsync timeline --repo`` (``timelinesource``).

The fleet table's host status items: put one, read them all (``fleettable``).

May import: ``repo``, ``crontab``, ``files``, ``core``, ``secretscan``.
"""
