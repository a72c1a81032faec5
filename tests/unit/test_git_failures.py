"""How git's stderr is read: a damaged checkout, a failed write, and the reason shown.

The messages are git 2.39's own, as seen on a full tmpfs, a truncated ``packed-refs``
and a lock left by a killed git.
"""

from __future__ import annotations

import pytest

from cronsync.repo.gitrun import failure_reason, is_corruption, is_write_failure

FULL_OBJECTS = (
    "fatal: unable to write loose object file: No space left on device\n"
    "fatal: unpack-objects failed\n"
)
FULL_PACK = (
    "fatal: write error: No space left on device\nfatal: fetch-pack: invalid index-pack output\n"
)
FULL_WORK_TREE = (
    "error: unable to write file data/blob.bin\n"
    "fatal: Could not reset index file to revision 'origin/main'.\n"
)
PACKED_REFS = (
    "fatal: unterminated line in .git/packed-refs: "
    "52404db360d5efec1fa91fd00ea32578a4abe7a7 refs/remotes/origin/main\n"
)
STALE_LOCK = (
    "error: cannot lock ref 'refs/remotes/origin/main': Unable to create "
    "'/srv/state/repo/.git/refs/remotes/origin/main.lock': File exists.\n\n"
    "Another git process seems to be running in this repository, e.g.\n"
    "remove the file manually to continue.\n"
)
NETWORK_WRITE = "fatal: unable to write flush packet: Broken pipe\n"


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (FULL_OBJECTS, "unable to write loose object file: No space left on device"),
        (FULL_PACK, "write error: No space left on device"),
        (FULL_WORK_TREE, "unable to write file data/blob.bin"),
    ],
)
def test_a_failed_write_is_no_corruption_and_its_line_is_the_reason(
    stderr: str, reason: str
) -> None:
    assert is_write_failure(stderr) is True
    assert is_corruption(stderr) is False
    assert failure_reason(stderr) == reason


@pytest.mark.parametrize("stderr", [PACKED_REFS, STALE_LOCK])
def test_a_damaged_checkout_is_corruption(stderr: str) -> None:
    assert is_corruption(stderr) is True
    assert is_write_failure(stderr) is False


def test_the_last_error_line_beats_git_advice() -> None:
    assert failure_reason(STALE_LOCK).startswith("cannot lock ref 'refs/remotes/origin/main'")


def test_the_connection_failing_is_not_a_failed_write_on_this_host() -> None:
    assert is_write_failure(NETWORK_WRITE) is False
    assert is_write_failure("remote: fatal: unable to write file x: No space left\n") is False
