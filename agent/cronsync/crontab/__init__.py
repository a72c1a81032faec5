"""Crontabs cronsync did not write: what Debian's cron would do with them.

Owns reading one crontab line (``line``) and the shell words in it (``shellread``),
what cron does with a schedule it accepts (``debianschedule``: reversed ranges, dates
that never come), the pure inventory of a crontab's text (``inventory``, reporting
``records``), where crontab text becomes text cronsync shows, secrets masked whatever
the line's state (``printable``), and the read-only reader of a host's ``/etc/crontab``,
``/etc/cron.d``, user crontabs and users (``hostfiles``); cron's log lines
(``cronlog``), which entry each belongs to (``logmatch``) and the evidence-of-life
verdicts made of them (``evidence``, with the files a command names, ``commandfiles``;
shown by ``evidencereport``; pure: the log files are read by ``migrate.cronlogs``).
Used by ``cronsync inventory``/``import``/``adopt`` and by status's count of
unmanaged entries.

May import: ``core``, ``secretscan`` and the standard library. Never writes a file.
"""
