"""Leaving the host: ``cronsync export`` to a managed scheduler.

Owns translating a validated job repository into another scheduler's documents:
Kubernetes ``batch/v1`` CronJobs (``kubernetes``, their schedules ``kubeschedule``, the
names and Secret mapping ``names``) and an EventBridge Scheduler CloudFormation template
(``cloudformation``, its cron expressions ``eventbridge``). ``days`` says which day
fields a schedule really restricts; ``refusal`` is what a job that a target cannot run
exactly raises. Those modules are pure (an import contract keeps them so);
``output`` alone loads the repository (``repo.gate``) and writes the files.

May import: ``repo``, ``files``, ``core`` (and, below them, what they may).
"""
