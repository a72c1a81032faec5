"""When one syncfs(2) may stand for an fsync of every file of a tree."""

from __future__ import annotations

import pytest

from cronsync.files.durable import reports_writeback_errors


@pytest.mark.parametrize(
    ("system", "release", "expected"),
    [
        ("Linux", "6.1.0-18-amd64", True),
        ("Linux", "5.8.0", True),
        ("Linux", "5.10.0-28-cloud-amd64", True),
        ("Linux", "5.7.19", False),  # syncfs returned 0 whatever failed
        ("Linux", "4.19.0-26-amd64", False),
        ("Linux", "10.0", True),
        ("Linux", "unknown", False),
        ("Darwin", "23.1.0", False),  # no syncfs
    ],
)
def test_syncfs_is_trusted_from_linux_5_8(system: str, release: str, expected: bool) -> None:
    assert reports_writeback_errors(system, release) is expected
