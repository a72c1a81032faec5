"""A legacy batch host for the cut-over tests (``cronsync import`` then ``adopt``).

:class:`Host` is a host root holding the crontab corpus (tests/data/crontabs) as
``/etc/crontab``, ``/etc/cron.d/*`` and a user crontab, a real upstream repository
(bare remote and work tree) and an agent config syncing it into the root.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cronsync.cli.migrate import add_import_verbs
from cronsync.crontab.inventory import CrontabFile, HostFacts, inventory_file
from cronsync.host.config import load_config
from cronsync.host.sync import run_sync
from helpers.crontabdata import DATA, SECRETS
from helpers.sandbox import FIXED_NOW, Upstream

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
postgres:x:105:110::/var/lib/postgresql:/bin/bash
batch:x:1001:1001::/home/batch:/bin/bash
"""
# its crontabs run jobs as root and the system user postgres: moving them to cronsync
# means naming them in users.allowed (they are refused otherwise)
ALLOWED = '["root", "postgres", "batch"]'
FILES = {
    "etc/crontab": ("legacy-etc-crontab", 0o644),
    "etc/cron.d/backup": ("cron.d-backup", 0o644),
    "etc/cron.d/secrets": ("inline-secrets", 0o644),
    "etc/cron.d/duplicates": ("duplicates", 0o644),
    "etc/cron.d/broken": ("one-bad-line", 0o644),
    "var/spool/cron/crontabs/batch": ("crontab-l-dump", 0o600),
}


class Host:
    """A host root with legacy crontabs, an upstream repository and an agent config."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        (self.root / "etc").mkdir(parents=True)
        (self.root / "etc/passwd").write_text(PASSWD)
        (self.root / "etc/timezone").write_text("UTC\n")
        for relative, (source, mode) in FILES.items():
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(DATA / source, path)
            path.chmod(mode)
        self.upstream = Upstream(base)
        self.config = self.root / "etc/cronsync/agent.toml"
        self.config.parent.mkdir(parents=True)
        self.config.write_text(
            f'[repo]\nurl = "{self.upstream.bare}"\n[host]\nname = "batch-1"\n'
            f'timezone = "UTC"\n[users]\nallowed = {ALLOWED}\nmust_exist = false\n'
            f'[paths]\nroot = "{self.root}"\n'
        )

    def cli(self, *argv: str) -> tuple[int, str]:
        parser = argparse.ArgumentParser(prog="cronsync")
        verbs = parser.add_subparsers(dest="verb")
        add_import_verbs(verbs, lambda sub: sub.add_argument("--config", metavar="PATH"))
        args = parser.parse_args([*argv, "--config", str(self.config)])
        return args.func(args), ""

    def import_jobs(self) -> None:
        work = self.upstream.work
        secrets = str(self.base / "secrets.toml")
        assert self.cli("import", "--into", str(work), "--secrets-file", secrets)[0] == 0
        for path in (work / "jobs").glob("*.toml"):
            text = path.read_text().replace('description = "TODO: ', 'description = "Done: ')
            path.write_text(text.replace('"TODO: team or e-mail"', '"ops@example.com"'))

    @classmethod
    def imported_and_synced(cls, base: Path) -> Host:
        """A host whose crontabs were imported into the upstream, pushed and synced."""
        box = cls(base)
        box.import_jobs()
        box.push_and_sync()
        return box

    def push_and_sync(self, message: str = "imported jobs") -> None:
        self.upstream.commit_and_push(message)
        outcome = run_sync(load_config(str(self.config)), clock=lambda: FIXED_NOW)
        assert outcome.record.result == "installed", outcome.record

    def snapshot(self) -> dict[str, tuple[bytes, int, int]]:
        found = {}
        for relative in FILES:
            info = (self.root / relative).stat()
            found[relative] = ((self.root / relative).read_bytes(), info.st_mode, info.st_mtime_ns)
        return found

    def adopt(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
        code, _ = self.cli("adopt", *argv)
        out, err = capsys.readouterr()
        for secret in SECRETS:
            assert secret not in out + err, secret
        return code, out + err


def origins_of(host: Host) -> dict[str, set[int]]:
    """Host path -> line numbers of the imported (enabled) jobs, read from the work tree."""
    from cronsync.migrate.jobwriter import parse_origins

    found: dict[str, set[int]] = {}
    for path in (host.upstream.work / "jobs").glob("*.toml"):
        text = path.read_text()
        if "enabled = false" in text:
            continue
        for origin in parse_origins(text):
            found.setdefault(origin.source, set()).add(origin.line)
    return found


def running_lines(path: Path, system: bool) -> set[int]:
    text = path.read_text()
    report = inventory_file(
        CrontabFile(str(path), text, system, None if system else "batch"),
        HostFacts(FIXED_NOW, ZoneInfo("UTC")),
    )
    return {entry.line for entry in report.entries if entry.runs}
