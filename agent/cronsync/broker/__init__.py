"""The broker: the privileged side of a job's run, on a Unix socket.

Owns the socket and the caller's kernel-reported identity (``listener``), the rule of
who may ask what (``access``: a job's secrets go only to a caller whose uid is that
job's user in the installed release), serving the requests (``service``), shipping
job output and metrics from the local spool (``outbox``), the fleet leases of one-host
jobs in DynamoDB (``leases``; the table's calls: ``fleetlease``), running it all (``daemon``,
``journal``), and ``cronsync doctor``, which proves the promise as each job user
(``doctor``; the checks one user makes: ``usercheck``). Served by ``cronsync agent``
or alone by ``cronsync broker`` (socket-activated by systemd). Never writes a secret's
value to disk or to a log.

May import: ``run`` (the installed release, run records) and below.
"""
