"""Moving a legacy host to cronsync: ``cronsync import``, ``adopt`` and ``cutover``.

Owns turning inventoried crontab entries into job drafts (``lines``, ``command``,
``argv``, ``names``, ``draft``, ``importplan``, ``importmodel``), moving inline secrets
out (``leaks``, ``movesecrets``), writing the repository and its MIGRATION report
(``importer``, ``jobwriter``, ``report``), retiring the original lines once the
imported jobs are installed (``adopt``; its comments ``adoptmark``, its root-only
backups ``adoptbackup``) and the cut-over of a whole host (``cutover``); reading a
host's cron log (``cronlogs``: syslog files and the journal) and the files an entry
writes and runs, for its evidence of life (``lifecheck``); the verification ledger of
the imported jobs after the cut-over (``ledger``; its verdicts are
``core.migrationledger``'s). ``adoptreport`` is adopt's ``--json`` document.

May import: ``run``, ``cloud``, ``secrets``, ``host`` and below; not ``agent``.
"""
