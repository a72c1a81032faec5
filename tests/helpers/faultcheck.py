"""The invariants a host must keep after any fault (tests/faults/).

After a killed sync, a full disk, a corrupt checkout or a dying endpoint, whatever
cronsync left on the host is checked the same way:

* the cron file is complete: byte for byte the cron file of a release cronsync made
  (the old one or the new one), never a mix, never a partial write;
* ``current`` names a complete release (``jobs.json`` that parses, its ``crontab``);
  it matches the cron file, except in the one window the install documents (``current``
  switched to the new release, the cron file still the old one: the state file still
  names the old release, so the next sync finishes the install);
* no stray file cron would read: in ``etc/cron.d`` only names cron ignores
  (a ``.`` or ``~`` in them, FACTS.md) besides the cron files that were there before;
* ``cronsync status --json`` answers with JSON and no traceback;
* the next sync recovers: it installs (or keeps) the branch tip and afterwards the
  cron file, ``current`` and the state file agree, with no staging folder left;
* no secret value in any file but the secret stores.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from helpers.sandbox import Sandbox

CRON_READS = re.compile(r"^[A-Za-z0-9_-]+$")
"""File names Debian cron reads in /etc/cron.d (FACTS.md); any other name it ignores."""

STAGING_PREFIX = ".tmp-"


@dataclass(frozen=True)
class HostSnapshot:
    """What a fault left on the host, read before anything repairs it."""

    cron: Optional[bytes]
    current_release: Optional[str]
    current_crontab: Optional[bytes]
    current_commit: Optional[str]
    state_release: Optional[str]
    cron_d_names: frozenset[str]


def cronsync(
    sandbox: Sandbox, *args: str, timeout: float = 120, env: Optional[dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``cronsync`` CLI (a new process) on the sandbox's config."""
    return subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "--config", str(sandbox.config_path), *args],
        cwd=sandbox.base,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def start_cronsync(sandbox: Sandbox, *args: str) -> subprocess.Popen[bytes]:
    """Start the real ``cronsync`` CLI in the background (output discarded)."""
    return subprocess.Popen(
        [sys.executable, "-m", "cronsync.cli.main", "--config", str(sandbox.config_path), *args],
        cwd=sandbox.base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_hard(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGKILL ``process`` (only it, not its children) and reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=timeout)


def _read(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def snapshot(sandbox: Sandbox) -> HostSnapshot:
    """Read the host as a fault left it (nothing is repaired or changed)."""
    current_release = current_crontab = current_commit = None
    if os.path.lexists(sandbox.current):
        current_release = os.path.basename(os.readlink(sandbox.current))
        current_crontab = _read(sandbox.current / "crontab")
        jobs = _read(sandbox.current / "jobs.json")
        assert jobs is not None, f"current -> {current_release} has no jobs.json"
        current_commit = json.loads(jobs)["commit"]
    state_release = None
    state = _read(sandbox.state_dir / "state.json")
    if state is not None:
        installed = json.loads(state).get("installed") or {}
        state_release = installed.get("release")
    cron_d = sandbox.cron_file.parent
    names = frozenset(os.listdir(cron_d)) if cron_d.is_dir() else frozenset()
    return HostSnapshot(
        _read(sandbox.cron_file),
        current_release,
        current_crontab,
        current_commit,
        state_release,
        names,
    )


def cron_bytes(crontab: Optional[bytes]) -> Optional[bytes]:
    """A release's ``crontab`` as the cron file holds it (always ending in a newline)."""
    if crontab is None or crontab.endswith(b"\n"):
        return crontab
    return crontab + b"\n"


def check_after_fault(
    after: HostSnapshot,
    old: HostSnapshot,
    new: HostSnapshot,
    cron_d_before: Iterable[str] = (),
) -> None:
    """Assert the invariants of a host a fault left (``after``), given the host before
    the faulty sync (``old``) and after the sync that recovered (``new``)."""
    assert after.cron in (old.cron, new.cron), (
        "the cron file is neither the old nor the new one:\n"
        + (after.cron or b"<missing>").decode(errors="replace")[-600:]
    )
    if after.current_release is not None:
        assert after.current_release in (old.current_release, new.current_release), (
            after.current_release
        )
        assert after.current_crontab is not None, f"{after.current_release} has no crontab"
    in_step = cron_bytes(after.current_crontab) == after.cron
    window = (
        after.current_release == new.current_release
        and after.cron == old.cron
        and after.state_release == old.state_release
    )
    assert in_step or window, (
        f"current -> {after.current_release} does not match the cron file, and the state "
        f"file names {after.state_release} (old {old.current_release}, new "
        f"{new.current_release})"
    )
    allowed = {"cronsync", *cron_d_before}
    stray = sorted(n for n in after.cron_d_names if CRON_READS.match(n) and n not in allowed)
    assert not stray, f"files cron would read in etc/cron.d: {stray}"


def check_recovered(sandbox: Sandbox, commit: str) -> HostSnapshot:
    """Assert a host that finished a sync of ``commit`` is whole; return its snapshot."""
    now = snapshot(sandbox)
    assert now.current_commit == commit, (now.current_commit, commit)
    assert now.cron is not None and cron_bytes(now.current_crontab) == now.cron
    assert now.state_release == now.current_release
    staging = [n for n in os.listdir(sandbox.releases) if n.startswith(STAGING_PREFIX)]
    assert not staging, f"staging folders left in releases/: {staging}"
    return now


def check_status_answers(sandbox: Sandbox) -> None:
    """``cronsync status --json`` answers with JSON, without a traceback."""
    done = cronsync(sandbox, "status", "--json")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), (done.returncode, done.stderr)
    json.loads(done.stdout)


def sync_recovers(sandbox: Sandbox, commit: str, never_says: Sequence[str] = ()) -> HostSnapshot:
    """Run the next sync (a real process) and assert the host is whole on ``commit``
    (and that the sync's output says none of ``never_says``)."""
    done = cronsync(sandbox, "sync")
    assert done.returncode == 0, (done.returncode, done.stdout[-800:], done.stderr[-800:])
    for text in never_says:
        assert text not in done.stdout + done.stderr, (text, done.stdout[-800:])
    return check_recovered(sandbox, commit)


def push_generation(sandbox: Sandbox, generation: int, jobs: int) -> str:
    """Write ``jobs`` generated jobs whose schedule and argument change with
    ``generation`` (every one changes), commit and push; return the commit."""
    for number in range(jobs):
        sandbox.upstream.write(
            f"jobs/generated-{number:03d}.toml",
            f'description = "generated job {number}"\n'
            'owner = "faults@example.com"\n'
            f'schedule = "{generation % 60} {number % 24} * * *"\n'
            f'command = ["echo", "generation {generation}"]\n',
        )
    return sandbox.upstream.commit_and_push(f"generation {generation}")


def processes_below(path: Path) -> list[str]:
    """Command lines of live processes that name ``path`` in their argv or run in it."""
    found = []
    text = str(path)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if text in argv or cwd.startswith(text):
            found.append(f"{entry}: {argv.strip()} (in {cwd})")
    return found


def wait_no_processes_below(path: Path, timeout: float = 30) -> None:
    """Assert that every process working on ``path`` is gone (waits up to ``timeout``:
    a parent-death signal is delivered asynchronously)."""
    deadline = time.monotonic() + timeout
    left = processes_below(path)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_below(path)
    assert not left, f"processes outlived the killed cronsync: {left}"


def files_holding(base: Path, values: Sequence[str], allowed: Iterable[Path] = ()) -> list[str]:
    """Files below ``base`` (not in ``allowed``) that hold any of ``values``, as
    ``path: which`` lines (the values themselves are not repeated)."""
    skip = {p.resolve() for p in allowed}
    needles = [(i, v.encode()) for i, v in enumerate(values) if v]
    found = []
    for folder, _dirs, files in os.walk(base):
        for name in files:
            path = Path(folder, name)
            if path.resolve() in skip or path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            hits = [str(i) for i, needle in needles if needle in data]
            if hits:
                found.append(f"{path}: secret #{', #'.join(hits)}")
    return found
