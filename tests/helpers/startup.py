"""What a piece of cronsync code imports, seen from a fresh interpreter.

The shim's start-up is measured in milliseconds, so tests check that its path keeps
away from costly standard modules: :func:`modules_loaded` runs the code in a new
``python -I -S`` (no site, so no other package's ``.pth`` imports anything first).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

AGENT = str(Path(__file__).resolve().parents[2] / "agent")


def modules_loaded(code: str, watched: set[str]) -> list[str]:
    """Run ``code`` (with cronsync importable) in a fresh interpreter; return which of
    the ``watched`` modules are imported after it, sorted."""
    script = (
        f"import sys\nsys.path.insert(0, {AGENT!r})\n{code}\n"
        f"print(*sorted({sorted(watched)!r} & sys.modules.keys()), sep='\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.split()
