"""Crontabs cronsync did not write: what Debian's cron would do with them.

Owns reading one crontab line (``line``) and the shell words in it (``shellread``),
what cron does with a schedule it accepts (``debianschedule``: reversed ranges, dates
that never come), the pure inventory of a crontab's text (``inventory``, reporting
``records``), and the read-only reader of a host's ``/etc/crontab``, ``/etc/cron.d``
and user crontabs (``hostfiles``). Used by ``cronsync inventory``/``import``/``adopt``
and by status's count of unmanaged entries.

May import: ``core``, ``secretscan`` and the standard library. Never writes a file.
"""
