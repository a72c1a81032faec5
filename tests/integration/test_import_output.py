"""``cronsync import`` writes exactly the bytes it wrote before its speed-up (issue 13).

Two hosts are imported in process: the crontab corpus (tests/data/crontabs: Debian's
``/etc/crontab``, cron.d files with secrets, duplicates and a bad line, user crontabs)
and a generated 600-line ``/etc/crontab`` (tests/helpers/crontabgen.py, the benchmark's
input). Every file written — the repository, MIGRATION.md, the secrets file — and the
list of files the import reports are compared, digest by digest, with the manifests in
tests/data/import-output/, recorded from the import as it was before it was made
faster. A change to the import's output that is meant has to re-record them:
``python tests/integration/test_import_output.py --write`` (and say so in the commit).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

if __name__ == "__main__":  # run as a script to re-record the manifests
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest

from cronsync.migrate.importer import ImportRequest, run_import
from cronsync.migrate.importmodel import ImportOptions
from helpers.crontabdata import PASSWD, put
from helpers.crontabgen import make_generated_host

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "import-output"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
GENERATED_LINES = 600
CORPUS_SYSTEM = [
    "cron.d-backup", "inline-secrets", "duplicates", "one-bad-line", "commented-out",
    "cron-tz", "percent-in-constructs", "shell-path", "tabs-system", "vendor-users",
    "cronsync-managed", "no-final-newline", "line-continuation", "latin1-line",
]  # fmt: skip
CORPUS_USERS = {"batch": "crontab-l-dump", "postgres": "user-quirks", "www-data": "runnable-user"}


def corpus_host(base: Path) -> Path:
    """A host root holding the corpus: Debian's /etc/crontab, cron.d files, user crontabs."""
    root = base / "host"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/timezone").write_text("Europe/Berlin\n")
    put(root / "etc/crontab", "legacy-etc-crontab")
    for name in CORPUS_SYSTEM:
        put(root / "etc/cron.d" / name, name)
    for user, name in CORPUS_USERS.items():
        put(root / "var/spool/cron/crontabs" / user, name, 0o600)
    script = root / "opt/batch/bin/aggregate.sh"  # copied by --copy-scripts
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\necho aggregated\n")
    for path in (script, *script.relative_to(root).parents):
        (root / path).chmod(0o755)
    stamp = NOW.timestamp() - 86400  # MIGRATION.md names its time of change
    os.utime(script, (stamp, stamp))
    return root


def import_manifest(base: Path, root: Path, zone: str, options: ImportOptions) -> str:
    """Import ``root`` into ``base/repo`` (secrets into ``base/private``) and return the
    manifest: ``SHA256 MODE  NAME`` for every file written and for the list of files the
    import reports (``base`` replaced by ``<base>`` first, as MIGRATION.md names the
    secrets file)."""
    repo, secrets = base / "repo", base / "private" / "secrets.toml"
    request = ImportRequest(
        into=repo,
        root=root,
        timezone=zone,
        options=options,
        secrets_file=secrets,
        now=NOW,
        skip_sources=frozenset({"/etc/cron.d/cronsync-managed"}),
    )
    result = run_import(request)
    files = {f"repo/{p.relative_to(repo)}": p for p in repo.rglob("*") if p.is_file()}
    files.update({f"private/{p.name}": p for p in secrets.parent.iterdir()})
    lines = [
        f"{_digest(path.read_bytes(), base)} {path.stat().st_mode & 0o777:04o}  {name}"
        for name, path in sorted(files.items())
    ]
    written = "\n".join(result.written).encode()
    lines.append(f"{_digest(written, base)} -  (the files the import reports)")
    return "\n".join(lines) + "\n"


def _digest(data: bytes, base: Path) -> str:
    return hashlib.sha256(data.replace(str(base).encode(), b"<base>")).hexdigest()


def corpus_manifest(base: Path) -> str:
    options = ImportOptions(copy_scripts=True, include_commented=True)
    return import_manifest(base, corpus_host(base), "Europe/Berlin", options)


def generated_manifest(base: Path) -> str:
    options = ImportOptions(include_commented=True)
    return import_manifest(base, make_generated_host(base, GENERATED_LINES), "UTC", options)


CASES = {"corpus": corpus_manifest, "generated": generated_manifest}


def _differences(recorded: str, made: str) -> list[str]:
    old = dict(line.split("  ", 1)[::-1] for line in recorded.splitlines())
    new = dict(line.split("  ", 1)[::-1] for line in made.splitlines())
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


@pytest.mark.parametrize("case", sorted(CASES))
def test_import_writes_the_recorded_bytes(case: str, tmp_path: Path) -> None:
    recorded = (MANIFESTS / f"{case}.sha256").read_text()
    made = CASES[case](tmp_path)
    assert made.count("\n") > 20  # the import wrote something to compare
    assert _differences(recorded, made) == []


@pytest.mark.parametrize("umask", [0o077, 0o002])
def test_job_files_are_0644_whatever_the_umask(umask: int, tmp_path: Path) -> None:
    root = make_generated_host(tmp_path, 60)
    request = ImportRequest(
        into=tmp_path / "repo", root=root, secrets_file=tmp_path / "s.toml", now=NOW
    )
    old = os.umask(umask)
    try:
        run_import(request)
    finally:
        os.umask(old)
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "repo/jobs").iterdir()}
    assert modes == {0o644}


def write_manifests() -> None:
    """Re-record the manifests from the import as it is now."""
    MANIFESTS.mkdir(parents=True, exist_ok=True)
    for case, make in CASES.items():
        with tempfile.TemporaryDirectory() as base:
            (MANIFESTS / f"{case}.sha256").write_text(make(Path(base)))
        print(f"wrote {MANIFESTS / case}.sha256")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/integration/test_import_output.py --write")
    write_manifests()
