"""Keep the secret values ``cronsync import`` moved out from showing anywhere else (pure).

:func:`secret_left_behind` refuses a job whose command or variables still hold one of
its own moved-out values; :func:`hide_known_values` masks every value found anywhere
(``ImportPlan.known``) wherever else it shows, and drops a job whose command holds one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Optional

from cronsync.migrate.importmodel import ImportPlan, MovedSecret, PlannedJob, Skipped
from cronsync.migrate.jobwriter import JobModel
from cronsync.secretscan import kinds

_MIN_CHECKED = 4  # shorter secret values are not searched for in the output (false hits)


def where_value_shows(model: JobModel, value: str) -> str:
    """Say where ``value`` shows in a job's command or variables, without the value.

    Returns:
        "as the value of -u", "inside word 3 of the command", "in the value of X
        (set above the line)", or "in the command" when it cannot be told better.
    """
    for name, text in model.env:
        if value in text:
            return f"in the value of {name} (set above the line)"
    words = list(model.command) if model.shell is None else (model.shell or "").split()
    for number, word in enumerate(words, 1):
        if value not in word:
            continue
        before = words[number - 2] if number > 1 else ""
        bare = word.strip("'\"") == value
        if bare and before.startswith("-") and value not in before:
            return f"as the value of {before}"
        option = word.partition("=")[0]
        if "=" in word and option.startswith("-") and value not in option:
            return f"as the value of {option}="
        return f"{'as' if bare else 'inside'} word {number} of the command"
    return "in the command"


def secret_left_behind(model: JobModel, secrets: Sequence[MovedSecret]) -> Optional[str]:
    """Return why a job cannot be written when a moved-out secret value still shows in
    its command or variables (it also stood somewhere no rule replaced), else None.
    Values shorter than 4 characters are not looked for (they match by chance)."""
    text = written_values(model)
    secret = next((s for s in secrets if len(s.value) >= _MIN_CHECKED and s.value in text), None)
    return None if secret is None else _left_behind(model, secret)


def _left_behind(model: JobModel, secret: MovedSecret) -> str:
    where = where_value_shows(model, secret.value)
    if secret.kind == kinds.ENV_ASSIGNMENT:
        what = f"the value of the secret variable {secret.label} also shows in this job"
    else:
        what = f"the secret value ({secret.label}) also shows elsewhere in this line"
    return f"{what} ({where}), so it cannot be replaced safely: move it out by hand"


def written_values(model: JobModel) -> str:
    """Return every text of a job file that comes from the crontab (not from a mask)."""
    return "\n".join([model.shell or "", *model.command, *(v for _k, v in model.env)])


def _job_texts(job: PlannedJob) -> str:
    return "\n".join([written_values(job.model), job.model.original, *job.changes, *job.todo])


def hide_known_values(plan: ImportPlan) -> None:
    """Mask every secret value found anywhere wherever else it shows, and drop a job
    whose command holds one that no rule moved out (found on another line, or
    elsewhere in its own line, where it was too short for ``secret_left_behind``).

    One regex pass over everything first: usually no value shows anywhere but where
    the scanner masked it, and nothing else is done."""
    known = plan.known
    texts = [_job_texts(job) for job in plan.jobs]
    texts += [f"{item.text}\n{item.reason}" for item in plan.skipped]
    if not known.contains("\n".join(texts)):
        return
    kept = []
    for job, text in zip(plan.jobs, texts):
        if not known.contains(text):
            kept.append(job)
            continue
        model = job.model
        value = known.first(written_values(model))
        if value is not None:
            where = model.origins[0]
            reason = _known_value_reason(plan, job, value)
            hidden = known.hide(model.original)
            plan.skipped.append(Skipped(where.source, where.line, "unsupported", reason, hidden))
            continue
        job.model = dataclasses.replace(model, original=known.hide(model.original))
        job.changes = [known.hide(text) for text in job.changes]
        job.todo = [known.hide(text) for text in job.todo]
        kept.append(job)
    if len(kept) != len(plan.jobs):
        plan.jobs = kept
        plan.secrets = {s.reference: s for job in kept for s in job.secrets}
    plan.skipped = [
        dataclasses.replace(item, text=known.hide(item.text), reason=known.hide(item.reason))
        for item in plan.skipped
    ]


def _known_value_reason(plan: ImportPlan, job: PlannedJob, value: str) -> str:
    own = next((s for s in job.secrets if s.value == value), None)
    if own is not None:
        return _left_behind(job.model, own)
    where = where_value_shows(job.model, value)
    other = next((s for s in plan.secrets.values() if s.value == value and s.jobs), None)
    found = f" (job {other.jobs[0]}'s {other.label})" if other else ""
    return (
        f"its command holds ({where}) a value that is a secret on another line{found}, "
        "so it cannot be replaced safely here: move it out by hand"
    )
