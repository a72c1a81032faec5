"""``cronsync adopt --apply --sync``: sync and adopt within one cron minute.

The host of test_adopt (legacy crontabs, imported jobs pushed to a real bare remote)
but not synced yet: the cut-over does the sync itself. The clock and the wait are our
own seams (``sync_and_adopt``'s arguments; ``seconds_to_wait`` for the CLI).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cronsync.core.errors import UsageError
from cronsync.host.config import load_config
from cronsync.migrate import cutover
from cronsync.migrate.adopt import ADOPTED
from cronsync.migrate.cutover import seconds_to_wait, sync_and_adopt
from helpers.legacyhost import Host, origins_of, running_lines

TOP = 1_780_000_020.0  # the top of a minute (epoch seconds)
assert TOP % 60 == 0


class Clock:
    """Epoch seconds that move on by ``step`` at each look, and by what is slept."""

    def __init__(self, start: float, step: float = 0.0) -> None:
        self.now = start
        self.step = step
        self.slept: list[float] = []

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def host(tmp_path: Path, git_env: None) -> Host:
    """Imported jobs pushed upstream; nothing synced yet."""
    box = Host(tmp_path)
    box.import_jobs()
    box.upstream.commit_and_push("imported jobs")
    return box


def retired_everywhere(host: Host) -> bool:
    for source, lines in origins_of(host).items():
        path = host.root / source.lstrip("/")
        text = path.read_bytes().split(b"\n")
        if not all(text[number - 1].startswith(ADOPTED) for number in lines):
            return False
        if running_lines(path, not source.startswith("/var/")) & lines:
            return False
    return True


@pytest.mark.parametrize(
    ("into_minute", "wait"), [(0.0, 0.0), (10.0, 0.0), (30.0, 0.0), (45.0, 16.0), (59.5, 1.5)]
)
def test_it_waits_for_the_next_minute_only_late_in_one(into_minute: float, wait: float) -> None:
    assert seconds_to_wait(TOP + into_minute) == pytest.approx(wait)


def test_a_late_start_waits_then_installs_and_retires_in_one_minute(host: Host) -> None:
    clock = Clock(TOP + 50)
    said: list[str] = []
    done = sync_and_adopt(
        load_config(str(host.config)), clock=clock, sleep=clock.sleep, announce=said.append
    )
    assert clock.slept == [pytest.approx(11.0)]
    assert said == ["waiting 11 s for the start of a minute, so cron sees the new jobs"]
    assert done.sync.record.result == "installed" and done.adopted
    assert done.crossed_minute is None
    assert retired_everywhere(host)
    assert done.backups is not None and len(done.restores) == 5


def test_a_cut_over_that_spans_a_minute_names_it(host: Host) -> None:
    clock = Clock(TOP + 20, step=25.0)  # every look at the clock: 25 s later
    done = sync_and_adopt(load_config(str(host.config)), clock=clock, sleep=clock.sleep)
    assert clock.slept == [] and done.adopted
    assert done.crossed_minute == time.strftime("%H:%M", time.gmtime(TOP + 60))


def test_a_refused_sync_retires_nothing(
    host: Host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cutover, "seconds_to_wait", lambda _now: 0.0)  # no real minute wait
    job = next((host.upstream.work / "jobs").glob("*.toml"))
    job.write_text(job.read_text() + "schedule_typo = 1\n")
    host.upstream.commit_and_push("a broken job")
    before = host.snapshot()
    code, _ = host.cli("adopt", "--apply", "--sync")
    _, err = capsys.readouterr()
    assert code == 1
    assert "sync refused:" in err and "schedule_typo" in err
    assert "nothing retired: the original lines keep running" in err
    assert host.snapshot() == before


def test_the_cli_syncs_and_adopts(
    host: Host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cutover, "seconds_to_wait", lambda _now: 0.0)
    code, _ = host.cli("adopt", "--apply", "--sync")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("sync installed:")
    assert "commenting out" in out and "done; backups in" in out
    assert retired_everywhere(host)


@pytest.mark.parametrize(
    ("argv", "message"),
    [(("--sync",), "needs --apply"), (("--apply", "--sync", "--root", "/"), "not --root")],
)
def test_sync_needs_apply_and_the_config_root(
    host: Host, argv: tuple[str, ...], message: str
) -> None:
    before = host.snapshot()
    with pytest.raises(UsageError, match=message):
        host.cli("adopt", *argv)
    assert host.snapshot() == before
    assert not (host.root / "var/lib/cronsync/current").exists()
