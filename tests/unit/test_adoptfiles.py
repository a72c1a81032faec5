"""Which crontabs ``cronsync adopt`` may change (migrate/adoptfiles.source_problem, pure)."""

from __future__ import annotations

import pytest

from cronsync.migrate.adoptfiles import WHICH, source_problem


@pytest.mark.parametrize(
    "source",
    [
        "/etc/crontab",
        "/etc/cron.d/backup",
        "/etc/cron.d/php8_1-FPM",
        "/var/spool/cron/crontabs/batch",
    ],
)
def test_the_crontabs_cron_reads_are_accepted(source: str) -> None:
    assert source_problem(source) is None


@pytest.mark.parametrize(
    "source",
    [
        "/etc/passwd",
        "etc/crontab",
        "//etc/crontab",
        "/etc/./crontab",
        "/etc/cron.d/../passwd",
        "/etc/cron.d/",
        "/etc/cron.d/.placeholder",
        "/etc/cron.d/backup.dpkg-old",
        "/etc/cron.d/sub/backup",
        "/var/spool/cron/crontabs/..",
        "/var/spool/cron/crontabs/.batch.tmp",
        "/var/spool/cron/crontabs/a b",
        "/var/spool/cron/crontabs/batch\n",
        "/../../../../etc/passwd",
        "/tmp/x/etc/crontab",
    ],
)
def test_anything_else_is_refused(source: str) -> None:
    assert source_problem(source) == f"is no crontab cron reads: {WHICH}"
