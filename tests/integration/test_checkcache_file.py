"""The check cache file of a release: written with the release, trusted only when whole."""

from __future__ import annotations

import stat
from pathlib import Path

from cronsync.core.checkcache import CheckCache, CheckedFile
from cronsync.core.model import HostContext, Problem
from cronsync.host.checkcache import CACHE_FILE, facts_key, load_cache, save_cache

CACHE = CheckCache(
    "facts",
    {"jobs/a.toml": "100644 a0"},
    {"jobs/a.toml": CheckedFile("100644 a0", None, (Problem("jobs/a.toml", 1, "", "bad"),), ())},
)


def test_a_saved_cache_reads_back_and_only_root_reads_it(tmp_path: Path) -> None:
    save_cache(tmp_path, CACHE)
    assert load_cache(tmp_path) == CACHE
    assert stat.S_IMODE((tmp_path / CACHE_FILE).stat().st_mode) == 0o600


def test_a_missing_or_changed_cache_is_not_used(tmp_path: Path) -> None:
    assert load_cache(tmp_path) is None
    save_cache(tmp_path, CACHE)
    path = tmp_path / CACHE_FILE
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"bad"', b'"bac"'))  # still JSON, not what was written
    assert load_cache(tmp_path) is None
    path.write_bytes(data[: len(data) // 2])
    assert load_cache(tmp_path) is None


def test_the_facts_key_follows_the_host_facts() -> None:
    host = HostContext("batch-1", existing_users=frozenset({"batch"}))
    assert facts_key("d1", host) == facts_key(
        "d1", HostContext("batch-1", existing_users=frozenset({"batch"}))
    )
    assert facts_key("d1", host) != facts_key("d2", host)
    assert facts_key("d1", host) != facts_key(
        "d1", HostContext("batch-1", existing_users=frozenset())
    )
    assert facts_key("d1", host) != facts_key("d1", HostContext("batch-1", timezone="Asia/Tokyo"))
