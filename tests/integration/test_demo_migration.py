"""The migration walkthrough: ./scripts/demo-migration builds a sandbox legacy host and
shows, from its --json documents (never from its prose), each legacy entry's verdict and
the imported jobs moving from never-ran to verified; the example output in
docs/how-to/migrate-a-legacy-host.md is what the script prints (its stable parts)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from helpers.demooutput import printed_lines, run_walkthrough, shown_lines

TOP = Path(__file__).resolve().parents[2]
HOWTO = TOP / "docs/how-to/migrate-a-legacy-host.md"
DOC_SANDBOX = re.compile(r"/tmp/cronsync-migration\.\w+")

# one worker runs the module, so the walkthrough runs once (a module fixture runs once
# per xdist worker)
pytestmark = pytest.mark.xdist_group("demo-migration")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """Run the walkthrough once: (its sandbox, its output, the folder of --json documents)."""
    if not (TOP / ".venv/bin/cronsync").exists():
        pytest.skip("the walkthrough installs into .venv; ./scripts/test creates it")
    return run_walkthrough(
        TOP / "scripts/demo-migration", tmp_path_factory.mktemp("demo-migration")
    )


def _doc(folder: Path, name: str) -> Any:
    return json.loads((folder / f"{name}.json").read_text())


def _script(command: str) -> str:
    """The script's name in a legacy command (``/opt/billing/sync-rates.sh >> ...``)."""
    return command.split(maxsplit=1)[0].rsplit("/", 1)[-1].removesuffix(".sh")


def test_inventory_gives_each_legacy_entry_a_verdict_with_evidence(
    demo: tuple[Path, str, Path],
) -> None:
    _sandbox, _out, folder = demo
    doc = _doc(folder, "inventory")
    verdicts = {_script(e["command"]): e["evidence"]["verdict"] for e in doc["entries"]}
    assert verdicts == {
        "nightly-invoices": "alive",
        "sync-rates": "silent",
        "export-ledger": "failing",
        "old-reconcile": "dead",
        "cleanup-tmp": "alive",
        "weekday-digest": "dead",
        "warm-cache": "unknown",
    }
    evidence = {_script(e["command"]): e["evidence"] for e in doc["entries"]}
    assert evidence["nightly-invoices"]["runs"] >= 7  # a week of syslog, .1 and .2.gz
    assert evidence["nightly-invoices"]["script"]["last_commit"]
    assert evidence["weekday-digest"]["runs"] == 0
    assert doc["evidence"]["sources"] == [
        "/var/log/syslog.2.gz",
        "/var/log/syslog.1",
        "/var/log/syslog",
    ]
    [gone] = doc["evidence"]["unmatched"]
    assert gone["command"].startswith("/opt/billing/legacy-fx.sh")


def test_the_ledger_moves_from_never_ran_to_verified(demo: tuple[Path, str, Path]) -> None:
    _sandbox, _out, folder = demo
    before = {row["name"]: row for row in _doc(folder, "migration-before")["jobs"]}
    after_doc = _doc(folder, "migration-after")
    after = {row["name"]: row for row in after_doc["jobs"]}
    assert {name: row["state"] for name, row in before.items()} == {
        "cleanup-tmp": "never-ran",
        "export-ledger": "never-ran",
        "nightly-invoices": "never-ran",
        "sync-rates": "never-ran",
        "warm-cache": "pending",
    }
    assert {name: row["state"] for name, row in after.items()} == {
        "cleanup-tmp": "verified",
        "export-ledger": "failing",
        "nightly-invoices": "running",
        "sync-rates": "verified",
        "warm-cache": "pending",
    }
    assert after["sync-rates"]["success_within"] and after["sync-rates"]["successes"] == 3
    assert after["cleanup-tmp"]["signed_off"]["by"] == "ana@example.com"
    assert after["export-ledger"]["failures"] == 3
    assert after_doc["complete"] is False and after_doc["since"]


def test_the_how_to_shows_what_the_script_prints(demo: tuple[Path, str, Path]) -> None:
    sandbox, out, _folder = demo
    printed = printed_lines(out, sandbox, TOP)
    shown = shown_lines(HOWTO, "scripts/demo-migration", DOC_SANDBOX)
    assert len(shown) >= 30, "the how-to shows the walkthrough's output"
    assert [line for line, seen in shown if seen not in printed] == []
