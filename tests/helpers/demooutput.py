"""A walkthrough script (scripts/demo-*) run for a test, and its output against the
example output its how-to shows.

A how-to marks each block it copied from a script with an HTML comment
(``<!-- output of scripts/NAME ... -->``) before a fenced ``text`` block. The stable
parts must be what the script printed: hashes, numbers and runs of blanks are
normalised away, and the script's sandbox and checkout are named SANDBOX and TOP.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

COLOUR = re.compile(r"\x1b\[[0-9;]*m")
RUN_ID = re.compile(r"\b\d{8}T\d{6}Z-[0-9a-f]+\b")  # 20261207T172837Z-d387
DOC_TOP = "/home/you/cronsync"  # the checkout the how-tos show


def run_walkthrough(script: Path, base: Path) -> tuple[Path, str, Path]:
    """Run ``script`` with its sandbox in ``base/sandbox`` and its --json documents in
    ``base/json`` (``CRONSYNC_DEMO_JSON``), without the caller's git and cronsync
    settings; return (sandbox, stdout, json folder).

    Raises:
        AssertionError: the script failed (the end of its output says why).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "CRONSYNC_"))}
    env["CRONSYNC_DEMO_JSON"] = str(base / "json")
    done = subprocess.run(
        [str(script), str(base / "sandbox")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return base / "sandbox", done.stdout, base / "json"


def normalised(text: str) -> str:
    """``text`` with run ids as RUN, hex hashes as H, numbers as N and blanks collapsed."""
    text = RUN_ID.sub("RUN", text)
    text = re.sub(r"\b[0-9a-f]{7,64}\b", "H", text)
    text = re.sub(r"\d+", "N", text)
    return re.sub(r"\s+", " ", text).strip()


def printed_lines(out: str, sandbox: Path, top: Path) -> set[str]:
    """The script's output ``out``, line by line, normalised (colours dropped)."""
    out = out.replace(str(sandbox), "SANDBOX").replace(str(top), "TOP")
    return {normalised(COLOUR.sub("", line)) for line in out.splitlines()}


def shown_lines(howto: Path, script: str, doc_sandbox: re.Pattern[str]) -> list[tuple[str, str]]:
    """(line as the how-to shows it, normalised) of every block marked as ``script``'s
    output in ``howto``, blank lines and ``…`` left out; ``doc_sandbox`` matches the
    sandbox paths the page shows."""
    mark = f"<!-- output of {script}"
    blocks = re.findall(re.escape(mark) + r".*?-->\s*```text\n(.*?)```", howto.read_text(), re.S)
    lines = []
    for block in blocks:
        for line in block.splitlines():
            if line.strip() in ("", "…"):
                continue
            named = doc_sandbox.sub("SANDBOX", line).replace(DOC_TOP, "TOP")
            lines.append((line, normalised(named)))
    return lines
