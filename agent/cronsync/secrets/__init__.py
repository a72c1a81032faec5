"""Secret backends: a job's declared secrets, fetched for its environment.

Owns resolving a job's secret references given a backend (``resolve``: what the shim
uses), picking a backend by name (``fetch``: what the broker uses), what one lookup
gave back (``outcome``), the local file backend (``file``: one 0600 TOML file per
user) and the AWS backends, Secrets Manager and SSM Parameter Store (``aws``: only the
broker, as root, reaches them). Values are never
written to disk or to a log; a failure names the reference, never a value.

May import: ``host`` (AWS settings and clients) and below.
"""
