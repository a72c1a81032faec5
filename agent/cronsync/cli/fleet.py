"""``cronsync fleet``: every host of the fleet table, worst first, with its flags.

The verb's ``cmd_fleet`` and ``add_fleet_verb`` (called by
:func:`cronsync.cli.main.build_parser`). The reading is :mod:`cronsync.host.fleettable`,
the judging :mod:`cronsync.core.fleetview`.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from cronsync.cli.jsonout import emit_json


def cmd_fleet(args: argparse.Namespace) -> int:
    """``cronsync fleet``: exit 0 when nothing is flagged, 1 otherwise; 2 for a config
    error, no ``[fleet] table``, or a table that cannot be read."""
    from datetime import datetime, timezone

    from cronsync.core.errors import UsageError
    from cronsync.core.fleetitem import ONE_HOST
    from cronsync.core.fleettext import fleet_text
    from cronsync.core.fleetview import fleet_document
    from cronsync.host import view
    from cronsync.host.config import load_config
    from cronsync.host.fleettable import fleet_client, read_host_items

    config = load_config(args.config)
    table = config.fleet.table
    if not table:
        raise UsageError(
            f"{config.path}: no [fleet] table: this host is in no fleet (set "
            '[fleet] table = "NAME", the DynamoDB table its agents write to)'
        )
    items = read_host_items(fleet_client(config.run.aws), table)
    jobs = (view.installed_jobs(config) or {}).get("jobs") or {}
    known = [  # the one-host jobs of this host's release, for those no host installs
        name
        for name, job in jobs.items()
        if job.get("run_on") == ONE_HOST and job.get("enabled") is not False
    ]
    doc = fleet_document(items, datetime.now(timezone.utc), known, config.host.name)
    doc["table"] = table
    if args.json:
        emit_json(doc)
    else:
        print(fleet_text(doc))
    return 0 if doc["healthy"] else 1


def add_fleet_verb(verbs: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``fleet`` to the ``cronsync`` parser."""
    fleet = verbs.add_parser(
        "fleet",
        help="every host of the fleet: health, commit, last sync, flags",
        description="Read every host's status from the fleet table ([fleet] table in "
        "agent.toml, with the host's [aws] settings; each agent writes its own after "
        "every cycle) and show the hosts worst first, with their flags: silent (no "
        "status for more than three of its intervals), unhealthy (its `cronsync status` "
        "is degraded or failed), behind-tip (its installed commit is not the tip the "
        'most recent fetch among the hosts saw); and the jobs with run_on = "one-host" '
        "that no healthy host installs (they do not run). --json: the cronsync.fleet/1 "
        "document. Exit status: 0 nothing flagged, 1 something flagged, no host reports, "
        "or this host has written no status (only `cronsync agent` writes one); 2 config "
        "error, no [fleet] table, or the table cannot be read.",
    )
    fleet.add_argument("--json", action="store_true", help="machine-readable output")
    add_config(fleet)
    fleet.set_defaults(func=cmd_fleet)
