"""The migration report of ``cronsync import``: MIGRATION.md and the ``--json`` document.

Pure: an :class:`~cronsync.migrate.importmodel.ImportPlan` in, text or JSON-ready data out.
No secret value ever reaches either: lines are shown as the inventory masked them,
secrets by variable and reference only, and each job's text is checked once more
against its own values (:func:`redact`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional

from cronsync.core.errors import ScheduleError
from cronsync.core.schedule import parse_schedule
from cronsync.core.scheduletext import describe
from cronsync.core.textshow import code_span, visible
from cronsync.crontab.evidence import EntryEvidence, Evidence, period_text
from cronsync.crontab.evidencereport import shown_command, summary
from cronsync.migrate.importmodel import ImportPlan, MovedSecret, PlannedJob, Skipped
from cronsync.secretscan import kinds, scan

FORMAT = 1
_SKIPPED_TITLES = (
    ("file", "Files cron ignores as a whole (or that could not be read)"),
    ("broken", "Broken lines (cron rejects them, and with them the whole file)"),
    ("not run", "Entries cron never runs"),
    ("unsupported", "Entries the import cannot carry over (move them by hand)"),
    ("duplicate", "Duplicates (imported once; adopt retires every copy)"),
    ("commented out", "Commented-out jobs (import them disabled with --include-commented)"),
    ("managed", "cronsync's own files (skipped)"),
)


def redact(text: str, secrets: Iterable[MovedSecret]) -> str:
    """Return ``text`` with every value of ``secrets`` replaced by ``***`` (a last guard:
    the text is built from masked parts already)."""
    for secret in secrets:
        if secret.value and secret.value in text:
            text = text.replace(secret.value, kinds.MASK)
    return text


@functools.lru_cache(maxsize=1024)
def masked(text: str) -> str:
    """Return a reason or message with any inline secret masked (the detectors of a
    crontab line, in every reading: it may quote one) and controls escaped."""
    return visible(scan.mask_findings(text, scan.find_line_secrets(text)))


@functools.lru_cache(maxsize=1024)
def schedule_words(schedule: str) -> str:
    """Return a job's schedule in English ("at 06:00 every day"), or "" when it cannot
    be read (an imported schedule always can)."""
    try:
        return describe(parse_schedule(schedule))
    except ScheduleError:
        return ""


_code = code_span


@dataclass(frozen=True)
class LifeReport:
    """The evidence of life the import found, and what it could not read."""

    evidence: Evidence
    notes: tuple[str, ...] = ()
    _by_place: dict[tuple[str, int], EntryEvidence] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # One index instead of a scan of every entry per job (that was quadratic:
        # most of a 10,000-line import). The first entry of a place wins, as before.
        for found in self.evidence.entries:
            self._by_place.setdefault((found.source, found.line), found)

    def of(self, job: PlannedJob) -> Optional[EntryEvidence]:
        """The evidence of the entry ``job`` was made from, if judged."""
        return self._by_place.get((job.entry.source, job.entry.line))


def _evidence_line(found: Optional[EntryEvidence]) -> list[str]:
    if found is None:
        return []
    return [f"- Evidence: **{found.verdict}** — " + "; ".join(found.evidence)]


def _job_section(job: PlannedJob, life: Optional[LifeReport] = None) -> list[str]:
    model = job.model
    words = schedule_words(model.schedule)
    origins = ", ".join(_code(f"{o.source}:{o.line}") for o in model.origins)
    runs = (
        "shell " + _code(model.shell)
        if model.shell is not None
        else "argv " + _code(repr(list(model.command)))
    )
    lines = [
        f"### `{model.name}` — `jobs/{model.name}.toml`",
        "",
        f"- From: {origins} as user {_code(model.user)}"
        + ("" if model.enabled else " (commented out: imported disabled)"),
        f"- Original: {_code(model.original)}",
        f"- Schedule: {_code(model.schedule)}" + (f" ({words})" if words else ""),
        f"- Runs: {runs}",
        *_evidence_line(life.of(job) if life else None),
    ]
    if model.workdir:
        lines.append(f"- Starts in: {_code(model.workdir)} (where cron started it)")
    if job.secrets:
        named = ", ".join(f"{_code(s.env)} → {_code(s.reference)}" for s in job.secrets)
        lines.append(f"- Secrets: {named}")
    lines += ["- Changed:", *(f"  - {visible(c)}" for c in job.changes or ["nothing"])]
    lines += ["- Left for a person:", *(f"  - [ ] {visible(t)}" for t in job.todo)]
    return [redact(line, job.secrets) for line in lines] + [""]


def _skipped_line(item: Skipped) -> str:
    where = f"{item.source}:{item.line}" if item.line is not None else item.source
    text = f" {_code(item.text)}" if item.text else ""
    return f"- {_code(where)}{text} — {masked(item.reason)}"


def _skipped_sections(skipped: Sequence[Skipped]) -> list[str]:
    lines: list[str] = []
    for category, title in _SKIPPED_TITLES:
        items = [item for item in skipped if item.category == category]
        if items:
            lines += [f"### {title}", "", *(_skipped_line(item) for item in items), ""]
    return lines or ["Everything cron runs was imported.", ""]


def _secrets_step(plan: ImportPlan, destination: Optional[str]) -> str:
    if not plan.secrets:
        return "- [ ] Secrets: none were found inline."
    if destination and destination.startswith("aws:"):
        return (
            f"- [ ] Secrets: {len(plan.secrets)} created in Secrets Manager "
            f"({destination[4:]}): give the hosts' role read access to them."
        )
    path = (destination or "file:?").removeprefix("file:")
    return (
        f"- [ ] Secrets: {len(plan.secrets)} written to {_code(path)} "
        "(mode 0600): put each user's entries into the host's secrets file "
        "(agent.toml `secrets.file`, e.g. /etc/cronsync/secrets.d/USER.toml, mode 0600) "
        "or into Secrets Manager, then delete that file."
    )


def _evidence_step(life: Optional[LifeReport]) -> list[str]:
    if life is None:
        return []
    counts = ", ".join(f"{n} {verdict}" for verdict, n in summary(life.evidence).items())
    return [
        f"- [ ] Evidence of life ({counts}; see *Evidence of life* and each job's "
        "*Evidence*): ask the owners about silent and failing jobs; retire dead ones "
        "(`enabled = false` and a `reason`, or delete the file) before the cut-over."
    ]


def _evidence_section(life: Optional[LifeReport]) -> list[str]:
    if life is None:
        return []
    evidence = life.evidence
    lines = [
        "## Evidence of life",
        "",
        f"- Cron log read: {', '.join(_code(s) for s in evidence.sources) or 'none'}; it "
        f"covers {period_text(evidence.period)}.",
        "- Verdicts: alive (ran, and wrote recently), silent (runs, writes nothing anyone "
        "reads), failing (cron or its own log shows failures), dead (cron does not run "
        "it, its script is missing, or it was due and never seen), unknown (no evidence "
        "either way). Each job's *Evidence* names what its verdict rests on.",
        *(f"- Note: {visible(note)}" for note in life.notes),
        "",
    ]
    if evidence.unmatched:
        lines += ["Commands cron logged that match no entry (removed since, or elsewhere):", ""]
        lines += [
            f"- {_code(f'({u.user}) ' + shown_command(u.command))}: {u.count} times, last at "
            f"{u.last_seen.strftime('%Y-%m-%d %H:%M')} UTC"
            for u in evidence.unmatched
        ]
        lines.append("")
    return lines


def render_migration(
    plan: ImportPlan, destination: Optional[str] = None, life: Optional[LifeReport] = None
) -> str:
    """Return MIGRATION.md: a summary, the checklist, the evidence of life, each job,
    and what was not imported.

    Args:
        plan: the import plan.
        destination: where the secrets went (``file:PATH`` or ``aws:PREFIX``), if any.
        life: the evidence of life of the entries (None: not judged, e.g. SOURCES).
    """
    disabled = sum(not job.model.enabled for job in plan.jobs)
    counts = f"{len(plan.jobs)} jobs imported" + (f" ({disabled} disabled)" if disabled else "")
    entries = [s for s in plan.skipped if s.line is not None]
    lines = [
        "# Migration report",
        "",
        "Written by `cronsync import`. Secret values never appear here: lines are masked "
        "and secrets are named by variable and reference only.",
        "",
        f"- Imported from: {', '.join(_code(s) for s in plan.sources) or 'nothing'}",
        f"- Host time zone: {_code(plan.timezone)} (cronsync.toml `[defaults] timezone`: "
        "every schedule keeps the meaning it had in cron)",
        f"- {counts}; {len(entries)} entries not imported (see the last section); "
        f"{len(plan.secrets)} secrets moved out",
        "",
        "## Checklist",
        "",
        "- [ ] Fill in `description` and `owner` of every job: `cronsync validate` fails "
        "while one still starts with TODO.",
        "- [ ] Read each job below: *Changed* says how it differs from the crontab line, "
        "*Left for a person* what someone must decide.",
        "- [ ] Overlapping runs: cron allowed them, so cronsync.toml says "
        '`concurrency = "allow"`; set `"forbid"` on jobs that must not overlap.',
        _secrets_step(plan, destination),
        *_evidence_step(life),
        "- [ ] Go through *Not imported*: fix and add by hand what should run, "
        "delete what is dead.",
        "- [ ] `cronsync validate .`, commit and push. On the host (agent stopped), cut "
        "over with `cronsync adopt --apply --sync`: it syncs and comments out the "
        "replaced lines within one minute, so cron reads both changes together and "
        "nothing runs twice (or not at all) in between.",
        "- [ ] After the cut-over, `cronsync migration` on the new host shows each job's "
        "runs since and its state: it is done when every job is verified (3 successes "
        "with a `success.check` or `success.within`) or signed off by a person "
        '(`[migration] verified_by = "…"`, `verified_on = "YYYY-MM-DD"` in its job file, '
        "a reviewed commit).",
        "",
        *_evidence_section(life),
        "## Jobs",
        "",
    ]
    for job in plan.jobs:
        lines += _job_section(job, life)
    lines += ["## Not imported", "", *_skipped_sections(plan.skipped)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _job_json(job: PlannedJob) -> dict[str, object]:
    model = job.model
    data: dict[str, object] = {
        "name": model.name,
        "file": f"jobs/{model.name}.toml",
        "origins": [{"source": o.source, "line": o.line} for o in model.origins],
        "user": model.user,
        "schedule": model.schedule,
        "enabled": model.enabled,
        "form": "shell" if model.shell is not None else "command",
        "script": job.script,
        "secrets": [
            {"env": s.env, "reference": s.reference, "kind": s.kind, "label": s.label}
            for s in job.secrets
        ],
        "changes": [redact(visible(c), job.secrets) for c in job.changes],
        "todo": [redact(visible(t), job.secrets) for t in job.todo],
    }
    return data


def import_json(
    plan: ImportPlan, repo: str, written: Sequence[str], destination: Optional[str]
) -> dict[str, object]:
    """Return the ``cronsync import --json`` document (``import_format`` 1)."""
    return {
        "import_format": FORMAT,
        "repository": repo,
        "timezone": plan.timezone,
        "sources": list(plan.sources),
        "jobs": [_job_json(job) for job in plan.jobs],
        "not_imported": [
            {
                "source": s.source,
                "line": s.line,
                "category": s.category,
                "reason": masked(s.reason),
                "text": s.text,
            }
            for s in plan.skipped
        ],
        "secrets": {
            "count": len(plan.secrets),
            "destination": destination,
            "references": sorted(plan.secrets),
        },
        "written": list(written),
    }
