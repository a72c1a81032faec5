"""cronsync: a crontab GitOps sync agent.

Jobs live in a git repository (one TOML file per job); the agent validates them,
renders ``/etc/cron.d/cronsync`` and installs it atomically.
"""

__version__ = "0.1.0"
