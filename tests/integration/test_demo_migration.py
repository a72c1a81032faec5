"""The migration walkthrough: ./scripts/demo-migration builds a sandbox legacy host and
shows, from its --json documents (never from its prose), each legacy entry's verdict and
the imported jobs moving from never-ran to verified; the example output in
docs/how-to/migrate-a-legacy-host.md is what the script prints (its stable parts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

TOP = Path(__file__).resolve().parents[2]
HOWTO = TOP / "docs/how-to/migrate-a-legacy-host.md"
MARK = "<!-- output of scripts/demo-migration"
DOC_SANDBOX = re.compile(r"/tmp/cronsync-migration\.\w+")
DOC_TOP = "/home/you/cronsync"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """Run the walkthrough once: (its sandbox, its output, the folder of --json documents)."""
    if not (TOP / ".venv/bin/cronsync").exists():
        pytest.skip("the walkthrough installs into .venv; ./scripts/test creates it")
    base = tmp_path_factory.mktemp("demo-migration")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "CRONSYNC_"))}
    env["CRONSYNC_DEMO_JSON"] = str(base / "json")
    done = subprocess.run(
        [str(TOP / "scripts/demo-migration"), str(base / "sandbox")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return base / "sandbox", done.stdout, base / "json"


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


def _normalised(text: str) -> str:
    text = re.sub(r"\b[0-9a-f]{7,64}\b", "H", text)
    text = re.sub(r"\d+", "N", text)
    return re.sub(r"\s+", " ", text).strip()


def test_the_how_to_shows_what_the_script_prints(demo: tuple[Path, str, Path]) -> None:
    sandbox, out, _folder = demo
    shown = set()
    for line in out.replace(str(sandbox), "SANDBOX").replace(str(TOP), "TOP").splitlines():
        shown.add(_normalised(re.sub(r"\x1b\[[0-9;]*m", "", line)))
    text = HOWTO.read_text()
    blocks = re.findall(re.escape(MARK) + r".*?-->\s*```text\n(.*?)```", text, re.DOTALL)
    assert len(blocks) >= 3, "the how-to shows the walkthrough's output"
    checked = 0
    for block in blocks:
        for line in block.splitlines():
            if line.strip() in ("", "…"):
                continue
            line = DOC_SANDBOX.sub("SANDBOX", line).replace(DOC_TOP, "TOP")
            assert _normalised(line) in shown, line
            checked += 1
    assert checked >= 30
