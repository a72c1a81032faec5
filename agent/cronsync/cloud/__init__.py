"""CloudWatch: job output to CloudWatch Logs and metrics to CloudWatch.

Owns the limits of one ``PutLogEvents`` batch (``batch``), the durable pending spool
(``spool``) and reading a run's log for delivery (``logreader``), sending with retries
(``send``), delivery of a run's log and of what earlier runs left pending (``delivery``,
``logs``), the shim's live forwarding thread (``forward``) and metrics (``metrics``).

May import: ``host`` (AWS settings and clients) and below. boto3 only through
``cronsync.host.awsclients``, and only when a client is asked for.
"""
