"""The pure core: what cronsync decides, with no filesystem, git, AWS or subprocess.

Owns the job model and the file formats' one schema (``schema``, ``agentschema``,
``schemadoc``), reading TOML documents that are already in memory (``tomlcheck``,
``manifest``, ``durations``), cron schedules as Debian's cron reads them (``schedule``,
``macros``, ``scheduletext``, ``tzrender``), validation, rendering the cron file and the
compiled ``jobs.json`` (``validate``, ``render``, ``compiled``), drift, plan, status views,
health and the staleness window a schedule gives (``staleness``, ``schedulegap``), the
state document, a release's names and ``jobs.json`` version (``release``),
the names of the folders a job's earlier users' runs are kept in (``runhistory``),
the local log format (``logformat``), the verification ledger of imported jobs
(``migrationledger``) and retirement candidates (``retirement``), when jobs run across
a day or a week and its pictures (``timeline``, ``timelinetext``, ``timelinesvg``,
``timelinejson``), JSON and immutable
values for the shim (``fastjson``, ``frozen``), showing untrusted text (``textshow``),
what git says about a commit's signature (``signing``), which shell strings may be parsed together
(``shellbatch``), URL redaction and errors.

The fleet view: a host's status item in the fleet table and its DynamoDB form
(``fleetitem``), the flags ``cronsync fleet`` raises (``fleetview``) and its text
(``fleettext``).

May import: the standard library's pure modules only, and nothing else in cronsync.
An import contract forbids ``os``, ``pathlib``, ``subprocess``, git, boto3 and watchdog.
"""
