"""Reading a job repository from disk (``cronsync.repo.files``) through the real gate.

Each test builds a small repository in a temp dir and runs ``check_repository`` on it:
links are refused and never read through, odd files are named for what they are, and
an unreadable folder is an error instead of a silent loss of jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronsync.core.model import ERROR, WARNING
from cronsync.repo.files import MAX_FILE_BYTES
from cronsync.repo.gate import GateReport, check_repository

IS_ROOT = os.geteuid() == 0
NOBODY = 65534
LINKED_JOB = "is a symlink: job files must be regular files in the repository"


def job_toml(command: str = '["true"]') -> str:
    """A valid job whose command needs no file of the repository."""
    return (
        'description = "d"\nowner = "o@example.com"\nschedule = "0 1 * * *"\n'
        f'user = "batch"\ncommand = {command}\n'
    )


def make_repo(root: Path, jobs: tuple[str, ...] = ("a",)) -> Path:
    """A repository with ``jobs/<name>.toml`` for each name; returns ``root``."""
    (root / "jobs").mkdir(parents=True)
    (root / "scripts").mkdir()
    for name in jobs:
        (root / "jobs" / f"{name}.toml").write_text(job_toml())
    return root


def outside_job(base: Path) -> Path:
    """A valid job file outside the repository (what a link must never bring in)."""
    outside = base / "host-dir"
    outside.mkdir()
    path = outside / "stolen.toml"
    path.write_text(job_toml())
    return path


def found(report: GateReport, file: str) -> list[tuple[str, str]]:
    """The (severity, message) of every problem located at ``file``."""
    return [(p.severity, p.message) for p in report.problems if p.file == file]


def job_files(report: GateReport) -> list[str]:
    return sorted(job.file for job in report.repo.jobs)


# -- symlinks ----------------------------------------------------------------------


def test_clean_repository_reads_every_job(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", ("a", "b"))
    (repo / "jobs" / "team").mkdir()
    (repo / "jobs" / "team" / "c.toml").write_text(job_toml())
    report = check_repository(repo)
    assert report.problems == ()
    assert job_files(report) == ["jobs/a.toml", "jobs/b.toml", "jobs/team/c.toml"]


def test_symlinked_job_file_is_refused_and_not_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / "x.toml").symlink_to(outside_job(tmp_path))
    report = check_repository(repo)
    assert found(report, "jobs/x.toml") == [(ERROR, LINKED_JOB)]
    assert job_files(report) == ["jobs/a.toml"]  # the outside job never got in
    assert not report.ok


def test_symlink_to_a_job_inside_the_repository_is_refused_too(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / "alias.toml").symlink_to("a.toml")
    report = check_repository(repo)
    assert found(report, "jobs/alias.toml") == [(ERROR, LINKED_JOB)]
    assert job_files(report) == ["jobs/a.toml"]


def test_symlink_to_etc_passwd_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / "passwd.toml").symlink_to("/etc/passwd")
    report = check_repository(repo)
    assert found(report, "jobs/passwd.toml") == [(ERROR, LINKED_JOB)]
    assert all("root:" not in p.message for p in report.problems)


def test_dangling_symlink_job_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / "gone.toml").symlink_to(tmp_path / "nowhere.toml")
    assert found(check_repository(repo), "jobs/gone.toml") == [(ERROR, LINKED_JOB)]


def test_jobs_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "jobs").symlink_to(outside_job(tmp_path).parent)
    report = check_repository(repo)
    [(severity, message)] = found(report, "jobs")
    assert severity == ERROR
    assert message.startswith("is a symlink: jobs/ must be a real folder")
    assert report.repo.jobs == ()


def test_symlinked_folder_under_jobs_is_refused_not_followed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / "team").symlink_to(outside_job(tmp_path).parent)
    report = check_repository(repo)
    [(severity, message)] = found(report, "jobs/team")
    assert severity == ERROR
    assert message.startswith("is a symlink: folders under jobs/ must be real folders")
    assert job_files(report) == ["jobs/a.toml"]
    assert not any(p.file.startswith("jobs/team/") for p in report.problems)


def test_symlinked_repo_config_is_refused_and_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "host-config.toml"
    outside.write_text('[defaults]\nuser = "root"\ntimezone = "Asia/Tokyo"\n')
    repo = make_repo(tmp_path / "repo")
    (repo / "cronsync.toml").symlink_to(outside)
    report = check_repository(repo)
    assert found(report, "cronsync.toml") == [
        (ERROR, "is a symlink: the repository config must be a regular file in the repository")
    ]
    assert report.repo.defaults.user is None
    assert report.repo.defaults.timezone is None


# -- files that are not regular files ---------------------------------------------


def test_fifo_named_toml_is_an_error_naming_what_it_is(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    os.mkfifo(repo / "jobs" / "pipe.toml")
    os.mkfifo(repo / "jobs" / "notes")
    report = check_repository(repo)  # must not block opening the FIFOs
    assert found(report, "jobs/pipe.toml") == [
        (ERROR, "is a FIFO (named pipe), not a regular file: job files must be regular files")
    ]
    assert found(report, "jobs/notes") == [
        (WARNING, "ignored: a FIFO (named pipe), not a regular file")
    ]
    assert job_files(report) == ["jobs/a.toml"]


def test_repo_config_that_is_a_folder_is_an_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "cronsync.toml").mkdir()
    report = check_repository(repo)
    assert found(report, "cronsync.toml") == [(ERROR, "is a folder: it must be a regular file")]
    assert job_files(report) == ["jobs/a.toml"]


def test_jobs_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "jobs").write_text("")
    report = check_repository(repo)
    assert found(report, "jobs") == [(ERROR, "is a regular file, not a folder")]
    assert report.repo.jobs == ()


def test_typo_in_suffix_is_a_warning(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / "b.tml").write_text(job_toml())
    report = check_repository(repo)
    assert found(report, "jobs/b.tml") == [(WARNING, "ignored: job files end in .toml")]
    assert report.ok


def test_a_folder_named_like_a_job_file_is_a_warning(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / "d.toml").mkdir()
    report = check_repository(repo)
    [(severity, message)] = found(report, "jobs/d.toml")
    assert severity == WARNING and message.startswith("is a folder, not a job file")
    assert report.ok


# -- hidden files ------------------------------------------------------------------


def test_hidden_toml_in_jobs_is_a_warning_other_hidden_files_are_silent(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / ".draft.toml").write_text(job_toml())
    (repo / "jobs" / ".a.toml.swp").write_text("\0binary")
    (repo / "jobs" / ".drafts").mkdir()
    (repo / "jobs" / ".drafts" / "b.toml").write_text(job_toml())
    report = check_repository(repo)
    [(severity, message)] = found(report, "jobs/.draft.toml")
    assert severity == WARNING
    assert message.startswith("hidden file ignored")
    assert [p.file for p in report.problems] == ["jobs/.draft.toml"]
    assert job_files(report) == ["jobs/a.toml"]
    assert report.ok


# -- content -----------------------------------------------------------------------


def test_large_and_non_utf8_job_files_are_located(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "jobs" / "big.toml").write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    (repo / "jobs" / "latin1.toml").write_bytes(b'description = "ok"\n# caf\xe9\n')
    report = check_repository(repo)
    assert found(report, "jobs/big.toml") == [(ERROR, "file is larger than 1 MiB")]
    assert [(p.line, p.message) for p in report.problems if p.file == "jobs/latin1.toml"] == [
        (2, "not valid UTF-8 text")
    ]


def test_very_deep_folders_do_not_exhaust_the_stack(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    deep = repo / "jobs"
    depth = sys.getrecursionlimit() + 100
    folder = os.open(deep, os.O_RDONLY)
    try:  # build it relative to a folder fd: the full path would pass PATH_MAX
        for _ in range(depth):
            os.mkdir("d", dir_fd=folder)
            child = os.open("d", os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = child
        with open(os.open("z.tml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder), "w") as f:
            f.write("")
    finally:
        os.close(folder)
    try:
        report = check_repository(repo)
        deepest = [p for p in report.problems if p.file.endswith("/z.tml")]
        assert len(deepest) == 1, [p.format()[:80] for p in report.problems]
        assert job_files(report) == ["jobs/a.toml"]
    finally:
        remove_deep(repo / "jobs" / "d", depth)


def remove_deep(top: Path, depth: int) -> None:
    """Remove a chain of ``depth`` nested ``d`` folders without recursion or long paths,
    holding at most two descriptors at a time (a default ``ulimit -n`` is 1024)."""
    folder = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth - 1):  # down to the deepest folder
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = child
        for name in os.listdir(folder):
            os.unlink(name, dir_fd=folder)
        for _ in range(depth - 1):  # and up again, removing each emptied folder
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = parent
            os.rmdir("d", dir_fd=folder)
    finally:
        os.close(folder)
    os.rmdir(top)


# -- permissions (as an unprivileged user) ----------------------------------------


def check_as_unprivileged(root: Path) -> dict[str, Any]:
    """Run ``check_repository(root)`` in a forked child, as nobody when we are root.

    Returns:
        ``{"problems": [...as_dict...], "jobs": [...files...]}`` from the child;
        ``{"cannot_drop": "..."}`` when the child could not become nobody (the test
        cannot be made here); ``{"error": "..."}`` when the check itself raised or the
        child died (a failure of the code under test, never a reason to skip).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        os.close(read_end)
        result: dict[str, Any]
        try:
            if IS_ROOT:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
        except BaseException as exc:
            result = {"cannot_drop": repr(exc)}
        else:
            try:
                report = check_repository(root)
                result = {
                    "problems": [p.as_dict() for p in report.problems],
                    "jobs": job_files(report),
                }
            except BaseException as exc:
                result = {"error": f"check_repository raised {exc!r}"}
        with os.fdopen(write_end, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return dict(json.loads(text)) if text else {"error": "child wrote nothing"}


def checked_as_unprivileged(root: Path) -> dict[str, Any]:
    """:func:`check_as_unprivileged`, skipping only when privileges cannot be dropped
    and failing the test when the check itself failed."""
    result = check_as_unprivileged(root)
    if "cannot_drop" in result:
        pytest.skip(f"cannot run the check as an unprivileged user: {result['cannot_drop']}")
    assert "error" not in result, result["error"]
    return result


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temp dir that nobody can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="cronsync-repofiles-"))
    yield base
    for path in [base, *base.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(base)


def test_unreadable_folder_and_file_are_errors_not_silently_dropped(shared_tmp: Path) -> None:
    repo = make_repo(shared_tmp / "repo")
    locked = repo / "jobs" / "team"
    locked.mkdir()
    (locked / "hidden-job.toml").write_text(job_toml())
    (repo / "jobs" / "secret.toml").write_text(job_toml())
    if IS_ROOT:
        for path in [shared_tmp, *shared_tmp.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)
    (repo / "jobs" / "secret.toml").chmod(0o000)
    locked.chmod(0o000)

    result = checked_as_unprivileged(repo)
    by_file = {p["file"]: (p["severity"], p["message"]) for p in result["problems"]}
    assert by_file == {
        "jobs/team": (
            ERROR,
            "cannot read folder (its jobs would be skipped): Permission denied",
        ),
        "jobs/secret.toml": (ERROR, "cannot read: Permission denied"),
    }
    assert result["jobs"] == ["jobs/a.toml"]  # the readable job still carries on
