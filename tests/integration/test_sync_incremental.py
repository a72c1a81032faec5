"""An incremental sync gives exactly what a from-scratch build of the same commit gives.

Random commit sequences on a real git repository (seeded; the seed is in the failure
message): job files added, changed, deleted, renamed, broken and fixed; scripts the jobs
run changed, broken, made non-executable or deleted; ``cronsync.toml`` changed or broken;
and between syncs the host's facts (its zone, groups, which users are allowed or must
exist, the host name). After every step host A (which keeps its check cache from sync to
sync) is compared with host B, a fresh root that syncs the same commit from nothing:
the result (installed or refused), every error and warning, ``jobs.json`` and the cron
file. A step that changed one job file only must reuse the checks of all the others.
Now and then A's cache is damaged: that must only cost a full build.

Quick by default (2 sequences of 12 steps); ``--long``: 8 sequences of 40 steps.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from helpers.sandbox import Sandbox, make_sandbox

USERS = ("batch", "nobody", "root")
ZONES = ("UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin", "Mars/Olympus")
SCHEDULES = ("0 3 * * *", "*/15 * * * *", "30 2 * * *", "@reboot", "0 0 31 2 *", "61 * * * *")
SHELLS = ("echo hello", "tar czf /tmp/x.tgz /srv | true", "if then", 'printf "%s" "$HOME"')
SCRIPT_TEXTS = {
    "scripts/a.sh": ("#!/bin/sh\necho ok\n", "#!/bin/sh\nif then fi (\n", "echo no shebang\n"),
    "scripts/b.sh": ("#!/bin/bash\nset -e\necho b\n", "#!/bin/bash\ncase x in\n", "#!/bin/sh\n"),
    "scripts/p.py": ("print('ok')\n", "def (:\n", "import sys\n"),
    "tools/run": ("#!/bin/sh\necho run\n", "#!/bin/sh\n(\n", "#!/usr/bin/env python3\nx = (\n"),
}
REPO_CONFIGS = (
    '[defaults]\nuser = "batch"\ntimezone = "UTC"\ntimeout = "1h"\n',
    '[defaults]\nuser = "batch"\ntimezone = "Europe/Berlin"\n',
    '[defaults]\ntimezone = "Bad/Zone"\n',
    "[defaults\nuser = ",
    "",
)
FOLDERS = ("jobs", "jobs/team", "jobs/other")
ONE_JOB = "one job file"
CACHE_FILE = "checks.json"  # in the release folder


@dataclass
class Facts:
    """What agent.toml says about the host."""

    name: str = "batch-1"
    zone: str = "UTC"
    groups: tuple[str, ...] = ("eu",)
    allowed: tuple[str, ...] = ("batch",)
    must_exist: bool = False

    def toml(self, url: str, root: Path) -> str:
        return (
            f'[repo]\nurl = {json.dumps(url)}\nbranch = "main"\n\n'
            f"[host]\nname = {json.dumps(self.name)}\ngroups = {json.dumps(list(self.groups))}\n"
            f"timezone = {json.dumps(self.zone)}\n\n"
            f"[users]\nallowed = {json.dumps(list(self.allowed))}\n"
            f"must_exist = {'true' if self.must_exist else 'false'}\n\n"
            f"[paths]\nroot = {json.dumps(str(root))}\n"
        )


@dataclass
class Walk:
    """One random sequence: the upstream's files as the test knows them."""

    rng: random.Random
    sandbox: Sandbox
    facts: Facts = field(default_factory=Facts)
    jobs: dict[str, str] = field(default_factory=dict)  # path -> text
    counter: int = 0

    def pick(self, good: tuple[str, ...], bad: tuple[str, ...]) -> str:
        """Mostly a good value, now and then one that is refused."""
        return self.rng.choice(bad if self.rng.random() < 0.06 else good)

    def job_text(self) -> str:
        rng = self.rng
        lines = [
            f'description = "job {rng.randrange(10_000)}"',
            'owner = "team@example.com"',
            f'schedule = "{self.pick(SCHEDULES[:4], SCHEDULES[4:])}"',
        ]
        if rng.random() < 0.7:
            lines.append(f'user = "{self.pick(USERS[:1], USERS[1:])}"')
        if rng.random() < 0.3:
            lines.append(f'timezone = "{self.pick(ZONES[:4], ZONES[4:])}"')
        kind = rng.choice(("script", "shell", "python", "bash", "workdir", "check", "plain"))
        if kind == "script":
            lines.append('command = ["scripts/a.sh", "--day"]')
        elif kind == "shell":
            lines.append(f"shell = {json.dumps(self.pick(SHELLS[:2], SHELLS[2:]))}")
        elif kind == "python":
            lines.append('command = ["python3", "scripts/p.py"]')
        elif kind == "bash":
            lines.append('command = ["bash", "scripts/b.sh"]')
        elif kind == "workdir":
            lines += ['workdir = "tools"', 'command = ["bash", "run"]']
        elif kind == "check":
            lines += ['command = ["tools/run"]', "[success]", 'check = ["scripts/b.sh"]']
        else:
            lines.append('command = ["true"]')
        if kind != "check" and rng.random() < 0.2:
            lines.insert(3, f'hosts = ["{rng.choice(("batch-*", "web-*"))}"]')
        if kind != "check" and rng.random() < 0.15:
            lines.insert(3, 'enabled = false\nreason = "retired"')
        return "\n".join(lines) + "\n"

    def new_path(self) -> str:
        self.counter += 1
        return f"{self.rng.choice(FOLDERS)}/job-{self.counter}.toml"

    def write_job(self, path: str, text: str) -> None:
        self.jobs[path] = text
        self.sandbox.upstream.write(path, text)

    def change(self) -> str:
        """Apply one random change to the work tree; return what kind it was."""
        rng, up = self.rng, self.sandbox.upstream
        kind = rng.choice(
            ("add", "change", "change", "delete", "rename", "break", "script", "config")
        )
        if kind in ("change", "delete", "rename", "break") and not self.jobs:
            kind = "add"
        if kind == "add":
            self.write_job(self.new_path(), self.job_text())
            return ONE_JOB
        if kind in ("change", "break"):
            path = rng.choice(sorted(self.jobs))
            broken = kind == "break" and rng.random() < 0.5
            text = 'description = "x\n' if broken else self.job_text()
            self.write_job(path, text)
            return ONE_JOB
        if kind == "delete":
            path = rng.choice(sorted(self.jobs))
            del self.jobs[path]
            up.remove(path)
            return ONE_JOB
        if kind == "rename":
            path = rng.choice(sorted(self.jobs))
            text = self.jobs.pop(path)
            up.remove(path)
            self.write_job(self.new_path(), text)
            return "rename"
        if kind == "script":
            script = rng.choice(sorted(SCRIPT_TEXTS))
            if rng.random() < 0.05:
                up.remove(script)
            else:
                mode = 0o755 if rng.random() < 0.9 else 0o644
                texts = SCRIPT_TEXTS[script]
                up.write(script, self.pick(texts[:1], texts[1:]), mode)
            return "script"
        up.write("cronsync.toml", self.pick(REPO_CONFIGS[:2], REPO_CONFIGS[2:]))
        return "config"

    def change_facts(self) -> None:
        rng, facts = self.rng, self.facts
        what = rng.choice(("zone", "groups", "allowed", "must_exist", "name"))
        facts.must_exist = what == "must_exist"  # batch does not exist: all refused
        if what == "zone":
            facts.zone = rng.choice(ZONES[:4])
        elif what == "groups":
            facts.groups = rng.choice((("eu",), ("us", "eu"), ()))
        elif what == "allowed":
            choices = (("batch",), ("batch", "nobody"), ("batch", "nobody", "root"))
            facts.allowed = rng.choice(choices)
        elif what == "name":
            facts.name = rng.choice(("batch-1", "web-1"))


def host(sandbox: Sandbox, root: Path, facts: Facts) -> Sandbox:
    """A host on ``root`` syncing ``sandbox``'s upstream, its agent.toml from ``facts``."""
    other = Sandbox(sandbox.base, root, root / "etc/cronsync/agent.toml", sandbox.upstream)
    other.config_path.parent.mkdir(parents=True, exist_ok=True)
    other.config_path.write_text(facts.toml(str(sandbox.upstream.bare), root))
    return other


def seen(box: Sandbox, outcome: Any, replace: Optional[str] = None) -> dict[str, Any]:
    """What a sync produced, with ``replace``'s root spelled as A's."""
    record = outcome.record
    found: dict[str, Any] = {
        "result": record.result,
        "errors": list(record.errors),
        "warnings": list(record.warnings),
    }
    if record.result == "installed":
        found["jobs"] = (box.current / "jobs.json").read_text()
        found["cron"] = box.cron_file.read_text()
    text = json.dumps(found, sort_keys=True)
    if replace is not None:
        text = text.replace(replace, "@ROOT@")
    return dict(json.loads(text))


REUSED = re.compile(r"reused the checks of (\d+) of (\d+) job files")


def reuse(outcome: Any) -> Optional[tuple[int, int]]:
    """(reused, total) from the sync's note, None when it made a full build."""
    for note in outcome.record.notes:
        match = REUSED.search(note)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def damage_cache(box: Sandbox) -> None:
    cache = box.current / CACHE_FILE
    if cache.exists():
        cache.chmod(0o600)
        cache.write_text('{"version": 1, "files": {"jobs/x.toml": ')


def walk(tmp: Path, seed: int, steps: int) -> None:
    rng = random.Random(seed)
    sandbox = make_sandbox(tmp)
    state = Walk(rng, sandbox)
    for script, texts in SCRIPT_TEXTS.items():
        sandbox.upstream.write(script, texts[0], 0o755)
    sandbox.upstream.commit_and_push("scripts")
    a = host(sandbox, tmp / "host-a", state.facts)
    first = a.sync()
    assert first.record.result == "installed", first.record
    one_job_reuses = 0
    installed = True  # A's last sync installed: its cache is of the commit before
    for step in range(steps):
        kinds = [state.change() for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        sandbox.upstream.commit_and_push(f"step {step}")
        facts_changed = rng.random() < 0.2
        if facts_changed:
            state.change_facts()
            a = host(sandbox, tmp / "host-a", state.facts)
        damaged = rng.random() < 0.08
        if damaged:
            damage_cache(a)
        incremental = a.sync()
        b = host(sandbox, tmp / f"host-b-{step}", state.facts)
        scratch = b.sync()
        where = f"seed {seed} step {step} ({', '.join(kinds)}; facts changed: {facts_changed})"
        got = seen(a, incremental, str(a.root))
        want = seen(b, scratch, str(b.root))
        assert got == want, where
        assert reuse(scratch) is None, where
        if kinds == [ONE_JOB] and not facts_changed and not damaged and installed:
            reused = reuse(incremental)
            assert reused is not None, where
            one_job_reuses += 1
            assert reused[0] >= reused[1] - 1, f"{where}: reused {reused}"
        installed = incremental.record.result == "installed"
    assert one_job_reuses > 0, f"seed {seed}: no step reused the cache"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Two sequences, eight with ``--long`` (each its own test: each within the timeout)."""
    if "seed" in metafunc.fixturenames:
        count = 8 if metafunc.config.getoption("--long") else 2
        metafunc.parametrize("seed", [1301 + n for n in range(count)])


def test_incremental_sync_equals_a_build_from_scratch(
    tmp_path: Path, git_env: None, request: pytest.FixtureRequest, seed: int
) -> None:
    walk(tmp_path, seed, 40 if request.config.getoption("--long") else 12)
