"""Moving a legacy host to cronsync: ``cronsync import``, ``adopt`` and ``cutover``.

Owns turning inventoried crontab entries into job drafts (``lines``, ``command``,
``argv``, ``names``, ``draft``, ``importplan``, ``importmodel``), moving inline secrets
out (``leaks``, ``movesecrets``), writing the repository and its MIGRATION report
(``importer``, ``jobwriter``, ``report``), retiring the original lines once the
imported jobs are installed (``adopt``; its comments ``adoptmark``, its root-only
backups ``adoptbackup``) and the cut-over of a whole host (``cutover``).

May import: ``run``, ``cloud``, ``secrets``, ``host`` and below; not ``agent``.
"""
