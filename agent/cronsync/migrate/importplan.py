"""Plan ``cronsync import``: crontabs and their inventories in, jobs and a report out.

Pure: the caller reads the files, runs the inventory and passes two lookups (a user's
home, a script to copy); nothing here touches the filesystem or AWS. Each entry cron
runs becomes a :class:`PlannedJob`; everything else becomes a :class:`Skipped` with
the reason, so nothing is dropped silently.

How cron's semantics are kept (the details of a command are in ``command``, the steps
of one job in ``draft``):

* schedule: as written (macros, names, steps, lists); where Debian reads a field
  differently (``1-5-7``, a reversed range in a list) the job gets cron's reading.
* user: the user field, or the owner of the user crontab.
* environment: each job gets the variables set above it; ``MAILTO`` is dropped (cronsync
  keeps the output), ``SHELL=/bin/sh`` is the default, another shell runs the line
  with ``SHELL -c`` (``bash -c`` when PATH finds that same bash, else the path as
  written); ``HOME`` (or the user's home) becomes ``workdir``, as cron starts jobs
  there. A value with ``$`` is kept as written (cron does not expand it).
* what cron got wrong is kept and left for a person: a ``%`` that cut the command
  inside ``$( )`` or quotes, a line that is not valid UTF-8 (U+FFFD in the job).
* names: ``names.distinct_names`` over every job of the import first, so that
  jobs of one program get the argument that tells them apart.
* secrets (``secretscan``) in the command or the environment go to ``[secrets]`` under
  ``PREFIX/JOB-VARIABLE``; a value shared by several jobs is stored once.
* the same schedule, user, command and environment twice: imported once, both lines
  recorded as its origins.
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
import re
from collections.abc import Container, Sequence
from typing import Callable, Optional

from cronsync.core.textshow import visible
from cronsync.core.tomlcheck import ENV_NAME
from cronsync.core.validate import USER_NAME
from cronsync.crontab.inventory import CrontabFile
from cronsync.crontab.printable import LineScans, read_line_secrets
from cronsync.crontab.records import PERCENT_CUT, REJECTED, FileInventory, InventoryEntry
from cronsync.migrate.command import SecretSpan, percent_cut_note
from cronsync.migrate.draft import CONTROL, apply_shell, clean_command, command_form, set_workdir
from cronsync.migrate.importmodel import (
    Draft,
    HomeLookup,
    ImportOptions,
    ImportPlan,
    MovedSecret,
    PlannedJob,
    ScriptReader,
    Skipped,
    Unsupported,
    build_model,
)
from cronsync.migrate.jobwriter import Origin
from cronsync.migrate.leaks import hide_known_values, secret_left_behind
from cronsync.migrate.lines import (
    command_field,
    effective_schedule,
    entry_body,
    env_at,
    env_is_secret,
)
from cronsync.migrate.names import derive_name, distinct_names, name_source, unique_name
from cronsync.secretscan import kinds

_AWS_CREDENTIALS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_UTF8 = (
    "the line is not valid UTF-8: its undecodable bytes were replaced by U+FFFD (\ufffd) "
    "in this job, so it no longer runs what cron ran: check the command and write the "
    "characters meant"
)


class Planner:
    """Builds an :class:`ImportPlan` file by file (see :func:`plan_import`)."""

    def __init__(
        self,
        plan: ImportPlan,
        homes: HomeLookup,
        scripts: Optional[ScriptReader],
        users: Optional[Container[str]] = None,
    ) -> None:
        self.plan, self.homes, self.scripts, self.users = plan, homes, scripts, users
        self.names: set[str] = set()
        self.name_counters: dict[str, int] = {}
        self.seen: dict[tuple[object, ...], PlannedJob] = {}
        self.by_value: dict[tuple[str, str], MovedSecret] = {}
        self.script_paths: dict[str, str] = {}
        self.base_names: dict[str, str] = {}  # command (masked) -> name (distinct_names)
        self.scans: LineScans = {}  # (line, command_at) -> its secrets, as the inventory found
        # (and (line, 0): the reading the masked digest of its origin masks)
        self.not_utf8 = False  # the file being planned was not valid UTF-8

    def add_file(self, crontab: CrontabFile, report: FileInventory) -> None:
        """Plan every entry of one crontab."""
        plan = self.plan
        if report.managed:
            plan.skipped.append(Skipped(crontab.source, None, "managed", "cronsync's own file"))
            return
        plan.sources.append(crontab.source)
        if not report.readable or crontab.text is None:
            plan.skipped.append(Skipped(crontab.source, None, "file", "; ".join(report.problems)))
            return
        if report.ignored:
            reason = "; ".join(p for p in report.problems) or "cron ignores this file"
            plan.skipped.append(Skipped(crontab.source, None, "file", reason))
        self.not_utf8 = any(p.startswith("not UTF-8") for p in crontab.problems)  # see hostfiles
        lines = crontab.text.split("\n")
        envs = env_at(lines, {entry.line for entry in report.entries})
        for entry in report.entries:
            self._add_entry(crontab, entry, lines[entry.line - 1], envs[entry.line])

    def _add_entry(
        self,
        crontab: CrontabFile,
        entry: InventoryEntry,
        line: str,
        env: tuple[tuple[str, str], ...],
    ) -> None:
        body = entry_body(line, entry.commented_out)
        command = command_field(body, crontab.system) if entry.schedule else body
        cut: Optional[Unsupported] = None
        try:
            findings = self._findings(entry, line, command, env)
        except Unsupported as exc:
            findings, cut = [], exc
        masked = visible(entry.text)
        skip = functools.partial(Skipped, entry.source, entry.line, text=masked)
        if entry.commented_out and not self.plan.options.include_commented:
            self.plan.skipped.append(skip("commented out", "a job behind #"))
            return
        if not entry.runs and not entry.commented_out:
            problem = entry.problems[0] if entry.problems else ""
            category = "broken" if problem.startswith(REJECTED) else "not run"
            self.plan.skipped.append(skip(category, "; ".join(entry.problems) or entry.state))
            return
        if cut is not None:
            self.plan.skipped.append(skip("unsupported", str(cut)))
            return
        # the digest of the line with its secrets masked: the job file is no test for guesses
        raw = line.encode("utf-8", "surrogatepass")
        origin = Origin.of_line(entry.source, entry.line, raw, self._masked(line, raw))
        key = (entry.schedule, entry.user, command, entry.commented_out, env)
        first = self.seen.get(key)
        if first is not None:
            self._duplicate(first, origin, skip)
            return
        try:
            job = self._plan_job(entry, command, env, origin, masked, findings)
        except Unsupported as exc:
            self.names.discard(exc.name)  # free it: the next job may have it
            self.plan.skipped.append(skip("unsupported", str(exc)))
            return
        if self.not_utf8 and "\ufffd" in line:
            job.todo.append(_NOT_UTF8)
        self.seen[key] = job
        self.plan.jobs.append(job)

    def _masked(self, line: str, raw: bytes) -> Optional[bytes]:
        """``jobwriter.masked_line(raw)`` made from the line's reading at 0, which the
        inventory keeps (``scans``); None when it has none (the line is scanned again).
        Not the line itself where the inventory masked nothing: its reading at the
        command may miss what the reading at 0 masks (``mysql --password DB``)."""
        at_0 = self.scans.get((line, 0))
        if at_0 is None or raw.decode("utf-8", "surrogateescape") != line:
            return None
        return at_0.shown().encode("utf-8", "surrogateescape")

    def _duplicate(self, first: PlannedJob, origin: Origin, skip: Callable[..., Skipped]) -> None:
        where = f"{first.entry.source}:{first.entry.line}"
        origins = (*first.model.origins, origin)
        first.model = dataclasses.replace(first.model, origins=origins)
        first.todo.append(
            f"{origin.source}:{origin.line} is the same entry: cron ran it twice each time; "
            "it is imported once (adopt comments out both) — check twice was not intended"
        )
        self.plan.skipped.append(
            skip("duplicate", f"same schedule, user, command and environment as {where}")
        )

    def _plan_job(
        self,
        entry: InventoryEntry,
        command: str,
        env: tuple[tuple[str, str], ...],
        origin: Origin,
        masked: str,
        findings: list[kinds.Finding],
    ) -> PlannedJob:
        schedule = effective_schedule(entry.schedule)
        if schedule is None:
            raise Unsupported(f"cronsync cannot read the schedule '{visible(entry.schedule)}'")
        if entry.user is None:
            raise Unsupported("whose crontab is it? The user is unknown (import it with --user)")
        base = self.base_names.get(entry.command) or derive_name(name_source(entry.command))
        name = unique_name(base, self.names, self.name_counters)
        try:
            return self._build(Draft(entry, name), command, env, origin, masked, findings)
        except Unsupported as exc:
            exc.name = name
            raise

    def _build(
        self,
        draft: Draft,
        command: str,
        env: tuple[tuple[str, str], ...],
        origin: Origin,
        masked: str,
        findings: list[kinds.Finding],
    ) -> PlannedJob:
        entry, schedule = draft.entry, effective_schedule(draft.entry.schedule) or ""
        if schedule != entry.schedule:
            written = visible(entry.schedule)
            draft.changes.append(f"schedule: cron reads '{written}' as '{schedule}'")
        command = clean_command(draft, command)
        self._environment(draft, env)
        spans = self._command_secrets(draft, command, findings)
        copy = self._copy_script if self.scripts is not None else None
        argv, shell = command_form(draft, command, spans, copy)
        set_workdir(draft, self.homes)
        if self.users is not None and draft.user not in self.users:
            draft.todo.append(
                f"user {visible(draft.user)!r} does not exist on this host: create it "
                "where the job will run, or change user"
            )
        draft.todo[:0] = ["fill in description and owner"]
        if not USER_NAME.fullmatch(draft.user):
            draft.todo.append(f"user {visible(draft.user)!r} is not a name cronsync accepts")
        cut = percent_cut_note(command, spans, entry.shell_command, draft.shell)
        draft.todo += [cut] if cut else []
        draft.todo += [visible(p) for p in entry.problems if not p.startswith(PERCENT_CUT)]
        model = build_model(draft, schedule, (origin,), masked, argv, shell)
        secrets = list(draft.secrets.values())
        job = PlannedJob(model, entry, draft.changes, draft.todo, secrets, draft.script)
        reason = secret_left_behind(model, job.secrets)
        if reason is not None:
            raise Unsupported(reason)
        self._commit_secrets(job)
        return job

    def _environment(self, draft: Draft, env: tuple[tuple[str, str], ...]) -> None:
        shell = None
        for name, value in env:
            if name == "MAILTO":
                sent = f"mailed to {value}" if value else "not mailed (MAILTO empty)"
                draft.changes.append(f"MAILTO dropped: cron's output was {sent}")
                if value:
                    draft.todo.append(
                        f"its output went by mail to {value}: cronsync keeps it in the run "
                        "log (cronsync logs, CloudWatch); alert on failures instead"
                    )
            elif name == "SHELL":
                shell = value
            elif not ENV_NAME.fullmatch(name) or CONTROL.search(value):
                draft.todo.append(f"variable {visible(name)!r} was set but cannot be carried over")
            elif env_is_secret(name, value):
                self._move_secret(draft, name, kinds.ENV_ASSIGNMENT, name, value)
            else:
                draft.env[name] = value
        if shell is not None:
            apply_shell(draft, shell)
        home = draft.env.get("HOME")
        if home is not None and home.startswith("/"):
            draft.workdir = home
        elif home is not None:
            draft.todo.append(f"HOME={visible(home)} is not absolute: set workdir by hand")

    def _findings(
        self, entry: InventoryEntry, line: str, command: str, env: tuple[tuple[str, str], ...]
    ) -> list[kinds.Finding]:
        """Scan the line again for the values (the inventory keeps none), only when the
        inventory found more secrets than the environment holds; return those in the
        command (spans counted from its start). Like the inventory, it reads the line
        every way cron could (``printable.read_line_secrets``): what any reading finds
        moves out.

        Raises:
            Unsupported: a secret spans the start of the command.
        """
        in_env = [value for name, value in env if env_is_secret(name, value)]
        for value in in_env:
            self.plan.known.add(value)
        if len(entry.secrets) <= len(in_env):
            return []
        start = len(line) - len(command)
        secrets = self.scans.get((line, start))  # the inventory's scan, when it made it
        if secrets is None:
            secrets = read_line_secrets(line, start)
        for value in secrets.values():
            self.plan.known.add(value)
        cut = secrets.cut_at(start)
        if cut is not None:
            raise Unsupported(f"a secret ({cut}) spans the start of the command: move it by hand")
        return secrets.in_suffix(start)

    def _command_secrets(
        self, draft: Draft, command: str, findings: list[kinds.Finding]
    ) -> list[SecretSpan]:
        spans = []
        for finding in findings:
            if "%" in command[finding.start : finding.end]:
                raise Unsupported(
                    "a secret contains %, which cron treats specially: move it by hand"
                )
            env = finding.env_name if ENV_NAME.fullmatch(finding.env_name) else "SECRET"
            env = "IMPORTED_" + env if env in _AWS_CREDENTIALS else env
            env = self._move_secret(draft, env, finding.kind, finding.label, finding.value)
            spans.append(SecretSpan(finding.start, finding.end, env))
        return spans

    def _move_secret(self, draft: Draft, env: str, kind: str, label: str, value: str) -> str:
        """Put one value in the job's [secrets]; return the variable it is read from."""
        base, number = env, 1
        while env in draft.env or (env in draft.secrets and draft.secrets[env].value != value):
            number += 1
            env = f"{base}_{number}"
        if env not in draft.secrets:
            shared = self.by_value.get((env, value))
            prefix = self.plan.options.secret_prefix
            reference = f"{prefix}{draft.name}-{env}"
            draft.secrets[env] = shared or MovedSecret(reference, env, kind, label, value)
            draft.changes.append(f"secret moved out: {env} ({label}, {kind.replace('_', ' ')})")
        return env

    def _copy_script(self, draft: Draft, program: str) -> Optional[str]:
        assert self.scripts is not None
        found = self.scripts(program, draft.user)
        if isinstance(found, str):
            draft.todo.append(f"{program} was not copied into scripts/: {found}")
            return None
        path = self.script_paths.get(program)
        if path is None:
            taken = set(self.plan.scripts)
            stem = _UNSAFE_FILE_CHARS.sub("-", posixpath.basename(program)).lstrip(".-") or "script"
            path, number = f"scripts/{stem}", 1
            while path in taken:
                number += 1
                root, dot, ext = stem.rpartition(".") if "." in stem[1:] else (stem, "", "")
                path = f"scripts/{root}-{number}{dot}{ext}"
            self.script_paths[program] = path
            self.plan.scripts[path] = found
        draft.script = path
        draft.changes.append(f"{program} copied to {path}: the command runs the copy")
        draft.todo.append(f"review {path} (and what it calls on the host)")
        return path

    def _commit_secrets(self, job: PlannedJob) -> None:
        for secret in job.secrets:
            self.by_value.setdefault((secret.env, secret.value), secret)
            self.plan.secrets.setdefault(secret.reference, secret)
            secret.users.add(job.model.user)
            secret.jobs.append(job.model.name)
        if job.secrets:
            job.todo.append(
                "secrets were moved out: put them in the secret store, then run the job "
                "once by hand to check it still gets them"
            )


def plan_import(
    pairs: Sequence[tuple[CrontabFile, FileInventory]],
    timezone: str,
    options: ImportOptions,
    homes: HomeLookup,
    scripts: Optional[ScriptReader] = None,
    users: Optional[Container[str]] = None,
    scans: Optional[LineScans] = None,
) -> ImportPlan:
    """Plan the import of crontabs.

    Args:
        pairs: each crontab (sources as host paths) with its inventory.
        timezone: the host's zone (the repository default).
        options: what the operator asked for.
        homes: where each user's jobs started (cron starts them in the home).
        scripts: reads a script for ``--copy-scripts``; None when not copying.
        users: who exists on this host (``name in users``): a job whose user does
            not is imported with that left for a person; None: not checked.
        scans: the lines the inventory scanned for secrets (``inventory_files``'
            ``scans``): those are not scanned again.
    Returns:
        the plan; never raises for any crontab content.
    """
    plan = ImportPlan(timezone, options)
    planner = Planner(plan, homes, scripts if options.copy_scripts else None, users)
    planner.scans = scans or {}
    planner.base_names = _base_names(pairs, options)
    for crontab, report in pairs:
        planner.add_file(crontab, report)
    if plan.known:
        hide_known_values(plan)
    return plan


def _base_names(
    pairs: Sequence[tuple[CrontabFile, FileInventory]], options: ImportOptions
) -> dict[str, str]:
    """Name every entry that may become a job, all at once (``distinct_names``)."""
    sources = {
        entry.command: name_source(entry.command)
        for _crontab, report in pairs
        if not report.managed
        for entry in report.entries
        if entry.runs or (entry.commented_out and options.include_commented)
    }
    names = distinct_names(sources.values())
    return {command: names[source] for command, source in sources.items()}
