"""Drift: what changed on the host behind cronsync's back, reported or reverted; and
changes of the host's own agent config."""

from __future__ import annotations

import os
import stat

from helpers.sandbox import Sandbox

BAD_JOB = """\
description = "A report added in a hurry"
owner = "someone@example.com"
schedule = "61 6 * * *"
command = ["scripts/cdn-warm.sh"]
"""


def test_drift_is_reported_and_left_alone_by_default(synced: Sandbox) -> None:
    original = synced.cron_file.read_bytes()
    edited = original + b"* * * * * root /usr/local/bin/hand-added\n"
    synced.cron_file.write_bytes(edited)

    outcome = synced.sync()

    assert outcome.exit_code == 0
    assert outcome.record.result == "unchanged"
    assert [finding.what for finding in outcome.drift] == ["cron-file"]
    assert synced.cron_file.read_bytes() == edited
    assert synced.state()["drift"] == [finding.as_dict() for finding in outcome.drift]

    done = synced.cli("status")
    assert done.returncode == 1, done  # degraded
    assert "health:     degraded" in done.stdout
    assert "drift:      the managed cron file was edited by hand" in done.stdout


def test_drift_is_reverted_with_policy_revert(synced: Sandbox) -> None:
    original = synced.cron_file.read_bytes()
    synced.cron_file.write_bytes(original.replace(b"30 3 * * *", b"31 3 * * *"))
    synced.write_config('[drift]\npolicy = "revert"\n')

    outcome = synced.sync()

    assert outcome.exit_code == 0
    # Restored from the installed release (no rebuild, no git needed).
    assert outcome.record.result == "unchanged"
    assert outcome.record.message == "up to date; drift reverted"
    assert any("drift reverted" in note for note in outcome.record.notes)
    assert synced.cron_file.read_bytes() == original
    assert stat.S_IMODE(synced.cron_file.stat().st_mode) == 0o644
    assert synced.state()["drift"] == []
    assert synced.sync().record.result == "unchanged"


def test_deleted_current_link_is_drift_and_reverted(synced: Sandbox) -> None:
    target = os.readlink(synced.current)
    synced.current.unlink()

    reported = synced.sync()
    assert [finding.what for finding in reported.drift] == ["current"]
    assert not os.path.lexists(synced.current)

    synced.write_config('[drift]\npolicy = "revert"\n')
    reverted = synced.sync()
    assert reverted.record.result == "unchanged"
    assert any("drift reverted" in note for note in reverted.record.notes)
    assert os.readlink(synced.current) == target


def test_deleted_cron_file_is_drift_and_reverted(synced: Sandbox) -> None:
    original = synced.cron_file.read_bytes()
    synced.cron_file.unlink()

    reported = synced.sync()
    assert [finding.message for finding in reported.drift] == ["the managed cron file was deleted"]
    assert not synced.cron_file.exists()

    synced.write_config('[drift]\npolicy = "revert"\n')
    assert synced.sync().record.message == "up to date; drift reverted"
    assert synced.cron_file.read_bytes() == original


def test_drift_stays_visible_while_upstream_is_refused(synced: Sandbox) -> None:
    edited = synced.cron_file.read_bytes() + b"* * * * * root /usr/local/bin/hand-added\n"
    synced.cron_file.write_bytes(edited)
    synced.upstream.write("jobs/report.toml", BAD_JOB)
    synced.upstream.commit_and_push("broken")

    outcome = synced.sync()

    assert outcome.record.result == "refused"
    assert [finding.what for finding in outcome.drift] == ["cron-file"]
    assert synced.state()["drift"] == [finding.as_dict() for finding in outcome.drift]
    status = synced.cli("status")
    assert "drift:      the managed cron file was edited by hand" in status.stdout


def test_revert_policy_restores_last_known_good_while_upstream_is_refused(
    synced: Sandbox,
) -> None:
    original = synced.cron_file.read_bytes()
    synced.cron_file.write_bytes(original + b"* * * * * root /usr/local/bin/hand-added\n")
    synced.write_config('[drift]\npolicy = "revert"\n')
    synced.upstream.write("jobs/report.toml", BAD_JOB)
    synced.upstream.commit_and_push("broken")

    outcome = synced.sync()

    assert outcome.record.result == "refused"
    assert synced.cron_file.read_bytes() == original


def test_host_config_change_rerenders_the_same_commit(synced: Sandbox) -> None:
    commit = synced.state()["installed"]["commit"]
    assert f"{synced.shim} cdn-warm-eu\n" in synced.cron_file.read_text()
    synced.config_path.write_text(
        synced.config_path.read_text().replace('groups = ["eu"]', 'groups = ["us"]')
    )

    outcome = synced.sync()

    assert outcome.record.result == "installed"
    assert outcome.record.commit == commit
    assert f"{synced.shim} cdn-warm-eu\n" not in synced.cron_file.read_text()
    assert synced.jobs_json()["jobs"]["cdn-warm-eu"]["status"] == "not targeted at host batch-1"
    assert synced.sync().record.result == "unchanged"


def test_changing_the_cron_file_path_removes_the_old_file(synced: Sandbox) -> None:
    old = synced.cron_file
    new = old.with_name("batch_jobs")
    synced.write_config('[cron]\nfile = "/etc/cron.d/batch_jobs"\n')

    outcome = synced.sync()

    assert outcome.record.result == "installed"
    assert new.is_file()
    assert not old.exists()
