"""Desired vs installed: what changed on the host behind cronsync's back (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from cronsync.core.state import Installed

CRON_FILE = "cron-file"
CURRENT = "current"
RELEASE = "release"


@dataclass(frozen=True)
class Observed:
    """What is on the host now.

    Attributes:
        cron_sha256: hash of the managed cron file, None when it is missing.
        current_target: where the ``current`` link points, None when it is missing.
        release_complete: the release ``current`` names exists with its jobs.json.
        release_digest: hash of the release's files, when they were read (a full
            check); None otherwise.
    """

    cron_sha256: Optional[str]
    current_target: Optional[str]
    release_complete: bool
    release_digest: Optional[str] = None


@dataclass(frozen=True)
class DriftFinding:
    """One difference between what cronsync wrote and what is there."""

    what: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """Return the JSON-ready form."""
        return {"what": self.what, "message": self.message}


def release_link(release: str) -> str:
    """Return the ``current`` link target for a release name (relative, so a sandbox
    root can move)."""
    return f"releases/{release}"


def find_drift(installed: Installed, observed: Observed) -> list[DriftFinding]:
    """Compare the last install with the host.

    Returns:
        One finding per difference; empty when the host is as cronsync left it.
    """
    findings = []
    if observed.cron_sha256 is None:
        findings.append(DriftFinding(CRON_FILE, "the managed cron file was deleted"))
    elif observed.cron_sha256 != installed.cron_sha256:
        findings.append(DriftFinding(CRON_FILE, "the managed cron file was edited by hand"))
    expected = release_link(installed.release)
    if observed.current_target is None:
        findings.append(DriftFinding(CURRENT, "the 'current' link is missing"))
    elif observed.current_target != expected:
        findings.append(
            DriftFinding(CURRENT, f"'current' points to {observed.current_target}, not {expected}")
        )
    elif not observed.release_complete:
        findings.append(
            DriftFinding(RELEASE, f"release {installed.release} is missing or incomplete")
        )
    elif (
        observed.release_digest is not None
        and installed.release_digest
        and observed.release_digest != installed.release_digest
    ):
        findings.append(
            DriftFinding(RELEASE, f"files of release {installed.release} were changed by hand")
        )
    return findings


def with_recorded_release_drift(
    quick: list[DriftFinding], recorded: list[dict[str, str]]
) -> list[DriftFinding]:
    """Add to a quick check's findings the release findings a full check recorded: a
    quick check cannot see a changed release file, so it must not forget one."""
    kept = [
        DriftFinding(item["what"], item["message"])
        for item in recorded
        if item.get("what") == RELEASE
    ]
    return quick + [finding for finding in kept if finding not in quick]
