"""The commands: ``cronsync`` (``main``, one module per group of verbs) and the
``cronsync-run`` shim's entry (``shim``).

Owns argument parsing, ``--help`` texts, ``--json`` documents (``jsonout``), exit codes
and turning a :class:`~cronsync.core.errors.CronsyncError` into one line on stderr.
``shim`` imports nothing but ``os`` and ``sys`` before it knows the job.

May import: every other part. Nothing imports ``cli``.
"""
