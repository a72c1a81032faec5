"""The crontab test corpus (tests/data/crontabs) and how tests lay it out as a host."""

from __future__ import annotations

import shutil
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "crontabs"
SECRETS = [
    line
    for line in (DATA / "SECRETS").read_text().splitlines()
    if line and not line.startswith("#")
]
"""Every secret value in the corpus: none may appear in any output."""
PASSWD = """\
root:x:0:0:root:/root:/bin/bash
postgres:x:105:110::/var/lib/postgresql:/bin/bash
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
batch:x:1001:1001::/home/batch:/bin/bash
"""
"""The users of a host laid out from the corpus (its user crontabs' owners)."""


def put(path: Path, source: str, mode: int = 0o644) -> Path:
    """Copy corpus file ``source`` to ``path`` (parents made) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / source, path)
    path.chmod(mode)
    return path
