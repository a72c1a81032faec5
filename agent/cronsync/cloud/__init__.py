"""CloudWatch: job output to CloudWatch Logs and metrics to CloudWatch.

Owns the limits of one ``PutLogEvents`` batch (``batch``), the durable pending spool
(``spool``; what a pending file holds: ``pending``; a new run's, as the shim writes it:
``spoolstart``) and reading a run's log for delivery (``logreader``), sending with
retries (``send``; what a failed call means:
``failures``) and finding out whether a batch whose outcome is unknown was stored
(``tailcheck``), delivery of a run's log and of what earlier runs left pending
(``delivery``; ``logs``: the live forwarder the broker runs per run, and flush),
``cronsync flush`` (``forward``) and metrics (``metrics``).

May import: ``host`` (AWS settings and clients) and below. boto3 only through
``cronsync.host.awsclients``, and only when a client is asked for.
"""
