"""Naming imported jobs (cronsync.migrate.names): wrappers looked through, interpreters'
scripts, run-parts folders, and names that tell jobs of one program apart."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.core.manifest import JOB_NAME
from cronsync.migrate.names import (
    derive_name,
    distinct_names,
    name_source,
    name_tokens,
    unique_name,
)

NAMES = [
    # a script's stem wins over its options
    ("/opt/job.sh --verbose", "job"),
    ("/opt/x.sh --x", "x"),
    ("--x", "x"),
    # wrappers: the command they run names the job
    ("envdir /etc/app/env /opt/app/sync.sh", "sync"),
    ("chpst -u app:app -e /etc/app/env /opt/app/sync.sh", "sync"),
    ("setlock /run/lock/sync /opt/app/sync.sh", "sync"),
    ("setlock -n /run/lock/sync /opt/app/sync.sh", "sync"),
    ("flock -n /tmp/x.lock /opt/a/backup.sh", "backup"),
    ("flock -w 10 /tmp/x.lock /opt/a/backup.sh", "backup"),
    ("flock /tmp/x.lock -c 'cd /srv && ./backup.sh'", "backup"),
    ("timeout 60 /opt/a/backup.sh", "backup"),
    ("timeout -s KILL 1h /opt/a/backup.sh", "backup"),
    ("nice /opt/a/backup.sh", "backup"),
    ("nice -n 19 ionice -c3 /opt/a/backup.sh", "backup"),
    ("ionice -c 3 -n 7 /opt/a/backup.sh", "backup"),
    ("nohup /opt/a/backup.sh &", "backup"),
    ("sudo -u www-data /opt/a/backup.sh", "backup"),
    ("sudo -iu www-data /opt/a/backup.sh", "backup"),
    ('su - www-data -c "/opt/a/backup.sh --full"', "backup"),
    ("su -s /bin/bash -c 'php /var/www/artisan queue:work' www-data", "artisan-queue-work"),
    ("su postgres -c 'vacuumdb --all'", "vacuumdb"),
    ("runuser -u app -- /opt/a/backup.sh", "backup"),
    ("run-one /opt/a/backup.sh", "backup"),
    ("cronic /opt/a/backup.sh", "backup"),
    ("chronic /opt/a/backup.sh", "backup"),
    ("/usr/bin/env LANG=C /opt/a/backup.sh", "backup"),
    ("cd /srv/app && /opt/a/backup.sh", "backup"),
    ("/usr/bin/time -f %e /opt/a/backup.sh", "backup"),
    # run-parts: the folder, with run-parts when it does not start with a letter
    ("run-parts /etc/periodic/15min", "run-parts-15min"),
    ("run-parts --report /etc/periodic/daily", "daily"),
    ("cd / && run-parts --report /etc/cron.hourly", "cron-hourly"),
    # interpreters: the script (and a subcommand), their options with values skipped
    ("php /var/www/html/cron.php", "cron"),
    ("php -d memory_limit=-1 -c /etc/php.ini /var/www/html/cron.php", "cron"),
    ("/usr/bin/php8.2 -q /var/www/html/cron.php", "cron"),
    ("python3 /opt/tools/report.py", "report"),
    ("python3 -W ignore -u /opt/tools/report.py", "report"),
    ("python3 -c 'import app; app.run()'", "python3"),
    ("bash /opt/tools/rotate.sh", "rotate"),
    ("bash -o pipefail -c '/opt/tools/rotate.sh | tee /tmp/x'", "rotate"),
    ("/bin/bash -lc /opt/tools/rotate.sh", "rotate"),
    ("node /srv/app/worker.js", "worker"),
    ("node --max-old-space-size=4096 -r dotenv/config /srv/app/worker.js", "worker"),
    ("perl -w /opt/tools/clean.pl", "clean"),
    ("ruby /opt/tools/sync.rb", "sync"),
    # reserved words and guards are looked through
    (
        "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then "
        "/usr/lib/php/sessionclean; fi",
        "sessionclean",
    ),
    ("! /opt/check.sh", "check"),
    ("[ -f /x ] && echo hi > /tmp/y", "echo"),
    ("test -f /tmp/x && rm /tmp/x", "rm"),
    # substitutions name nothing
    ("sleep $(( RANDOM % 600 ))m && /usr/local/bin/report.sh", "report"),
    ("tar czf /b/www-$(date +%F).tgz /var/www", "tar"),
]


@pytest.mark.parametrize(("command", "name"), NAMES)
def test_names_come_from_what_the_command_runs(command: str, name: str) -> None:
    assert derive_name(command) == name


def test_name_source_reads_a_cut_command_as_meant() -> None:
    assert name_source("sleep $(( ( RANDOM % 600 ) + 1 ))m && /opt/report.sh") == (
        "sleep $(( ( RANDOM % 600 ) + 1 ))m && /opt/report.sh"
    )
    assert name_source("mail -s hi root%body") == "mail -s hi root"
    assert name_source("date +\\%F") == "date +%F"


def test_tokens_are_arguments_then_folders() -> None:
    assert name_tokens("rsnapshot daily") == ["daily"]
    assert name_tokens("php /var/www/shop/cron.php --queue=mail") == [
        "cron",
        "shop",
        "www",
        "queue-mail",
    ]
    assert name_tokens("cd /srv/app1 && ./run.sh -v") == ["app1"]
    assert name_tokens("curl -s https://hc-ping.com/0b5e9b8c-8b1f-4e0e-9f1a-3c1d2e4f5a6b") == [
        "hc-ping-com"
    ]  # a long id is no name


def test_the_first_keeps_its_name_and_the_others_get_what_differs() -> None:
    commands = [
        "rsnapshot alpha",
        "rsnapshot daily",
        "/usr/bin/rsnapshot weekly",
        "pg_dump -h db1 shop > /b/shop.sql",
        "pg_dump -h db1 blog > /b/blog.sql",
        "php /var/www/shop/cron.php",
        "php /var/www/blog/cron.php",
        "/opt/backup.sh --full db1",
        "/opt/backup.sh --full db2",
        "/opt/backup.sh --incremental db1",
        "echo a",
        "echo b",
        "/opt/once.sh",
        "/opt/once.sh",
    ]
    assert distinct_names(commands) == {
        "rsnapshot alpha": "rsnapshot",
        "rsnapshot daily": "rsnapshot-daily",
        "/usr/bin/rsnapshot weekly": "rsnapshot-weekly",
        "pg_dump -h db1 shop > /b/shop.sql": "pg_dump",
        "pg_dump -h db1 blog > /b/blog.sql": "pg_dump-blog",
        "php /var/www/shop/cron.php": "cron",
        "php /var/www/blog/cron.php": "cron-blog",
        "/opt/backup.sh --full db1": "backup",
        "/opt/backup.sh --full db2": "backup-full-db2",
        "/opt/backup.sh --incremental db1": "backup-incremental",
        "echo a": "echo",
        "echo b": "echo",  # nothing better: numbered by unique_name
        "/opt/once.sh": "once",
    }


def test_distinct_names_are_unique_once_numbered() -> None:
    names = distinct_names(["echo a", "echo b", "echo c", "rsnapshot x1", "rsnapshot x2"])
    taken: set[str] = set()
    assert [unique_name(n, taken) for n in names.values()] == [
        "echo",
        "echo-2",
        "echo-3",
        "rsnapshot",
        "rsnapshot-x2",
    ]


@given(st.lists(st.text(max_size=40), max_size=8))
@settings(max_examples=200, deadline=None)
def test_distinct_names_are_valid_job_names(commands: list[str]) -> None:
    names = distinct_names(commands)
    assert set(names) == set(commands)
    for name in names.values():
        assert JOB_NAME.fullmatch(name), name
    for command in commands:
        assert JOB_NAME.fullmatch(derive_name(name_source(command)))
