"""A release's tree is made durable through the flush opened before it was written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cronsync.core.errors import InstallError
from cronsync.core.release import JOBS_FILE
from cronsync.files.durable import TreeFlush, reports_writeback_errors
from cronsync.host.config import Paths
from cronsync.host.install import CRONTAB_FILE, finish_release, new_staging_dir


def test_flush_of_a_written_tree(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    with TreeFlush(root) as flush:
        (root / "jobs").mkdir()
        for n in range(20):
            (root / "jobs" / f"job-{n}.toml").write_text(f"n = {n}\n")
        flush.flush()
        uname = os.uname()
        assert flush.one_call is reports_writeback_errors(uname.sysname, uname.release)
    with pytest.raises(InstallError, match="already closed"):
        flush.flush()


def test_flush_of_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match=r"cannot open directory .*missing"):
        TreeFlush(tmp_path / "missing")


class RecordingFlush(TreeFlush):
    """Our seam: notes what the staged release held when it was flushed."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.saw: list[set[str]] = []

    def flush(self) -> None:
        self.saw.append({entry.name for entry in self.root.iterdir()})
        super().flush()


def test_finish_release_flushes_the_whole_staged_tree_before_renaming(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, cron_file=tmp_path / "etc/cron.d/cronsync")
    staging = new_staging_dir(paths, "a" * 40)
    flush = RecordingFlush(staging)
    (staging / "repo").mkdir()
    (staging / "repo" / "job.toml").write_text("x = 1\n")
    name = finish_release(paths, staging, "a" * 40, b"{}\n", "# crontab\n", flush)
    flush.close()
    assert flush.saw == [{"repo", JOBS_FILE, CRONTAB_FILE}]  # everything, still staged
    assert (paths.releases / name / "repo" / "job.toml").read_text() == "x = 1\n"
