"""Evidence of life as people and scripts read it: text, JSON and MIGRATION.md lines.

Pure: :class:`~cronsync.crontab.evidence.Evidence` in, text or JSON-ready data out.
Commands come from the inventory, masked already; a command cron logged that matches
no entry is masked here (``printable``) before it is shown, with control characters
escaped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from cronsync.core.textshow import visible
from cronsync.crontab.evidence import VERDICTS, EntryEvidence, Evidence, log_covered
from cronsync.crontab.logmatch import Unmatched
from cronsync.crontab.printable import read_line_secrets

_LISTED_UNMATCHED = 10


def shown_command(command: str) -> str:
    """Return a command as cron logged it, every secret masked, controls escaped."""
    return visible(read_line_secrets(command).shown())


def _unmatched_json(item: Unmatched) -> dict[str, object]:
    return {
        "user": item.user,
        "command": shown_command(item.command),
        "count": item.count,
        "last_seen": item.last_seen.isoformat(),
    }


def summary(evidence: Evidence) -> dict[str, int]:
    """Return verdict -> how many entries have it (every verdict listed)."""
    counts = Counter(item.verdict for item in evidence.entries)
    return {verdict: counts.get(verdict, 0) for verdict in VERDICTS}


def evidence_json(evidence: Evidence, notes: Sequence[str]) -> dict[str, object]:
    """Return the ``evidence`` document of ``inventory --evidence --json`` (the
    entries' own evidence goes with each entry: :meth:`EntryEvidence.to_json`)."""
    period = evidence.period
    return {
        "sources": list(evidence.sources),
        "period": [t.isoformat() for t in period] if period else None,
        "summary": summary(evidence),
        "unmatched": [_unmatched_json(item) for item in evidence.unmatched],
        "notes": list(notes),
    }


def entry_line(item: EntryEvidence) -> str:
    """Return ``VERDICT: evidence; evidence`` for one entry."""
    return f"{item.verdict}: " + "; ".join(item.evidence)


def evidence_text(evidence: Evidence, notes: Sequence[str]) -> str:
    """Return the evidence section of ``inventory --evidence``: one line per entry, the
    commands cron logged that match no entry, the summary and the notes."""
    sources = ", ".join(evidence.sources) or "no log"
    lines = [f"evidence from {sources}; {log_covered(evidence.period)}:"]
    rows = [(f"{item.source}:{item.line}", item) for item in evidence.entries]
    width = max((len(where) for where, _item in rows), default=0)
    lines += [f"{where.ljust(width)}  {entry_line(item)}" for where, item in rows]
    if evidence.unmatched:
        lines.append(f"cron logged {len(evidence.unmatched)} commands that match no entry here:")
        for item in evidence.unmatched[:_LISTED_UNMATCHED]:
            lines.append(
                f"  ({item.user}) {shown_command(item.command)}: {item.count} times, last at "
                f"{item.last_seen.strftime('%Y-%m-%d %H:%M')} UTC"
            )
        if len(evidence.unmatched) > _LISTED_UNMATCHED:
            lines.append(f"  ... and {len(evidence.unmatched) - _LISTED_UNMATCHED} more (--json)")
    counts = summary(evidence)
    lines.append(", ".join(f"{n} {verdict}" for verdict, n in counts.items()))
    lines += [f"note: {note}" for note in notes]
    return "\n".join(lines)
