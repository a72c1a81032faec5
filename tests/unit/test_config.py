"""agent.toml checks: where the cron file may live, relative paths, a byte-order mark.

``parse_config`` is given real TOML text; ``load_config`` reads real files in a temp
folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cronsync.core.errors import ConfigError
from cronsync.core.tomlcheck import parse_toml
from cronsync.host.config import is_relative_path, load_config, parse_config

CONFIG = Path("/etc/cronsync/agent.toml")


def agent_toml(url: str = "/srv/jobs.git", root: str = "/srv/host", cron: str = "") -> str:
    """A minimal valid agent.toml; ``cron`` is the [cron] table's body, if any."""
    text = (
        f"[repo]\nurl = {json.dumps(url)}\n"
        '[host]\nname = "batch-1"\ntimezone = "UTC"\n'
        f"[paths]\nroot = {json.dumps(root)}\n"
    )
    return text + (f"[cron]\n{cron}\n" if cron else "")


def config_error(text: str) -> str:
    """The message of the ConfigError parsing ``text`` raises (fails when none is)."""
    with pytest.raises(ConfigError) as raised:
        parse_config(CONFIG, text)
    return raised.value.message


# -- cron.file ------------------------------------------------------------------------


@pytest.mark.parametrize("cron_file", ["/etc/cron.d/cronsync", "/etc/cron.d/batch_jobs-2"])
def test_cron_file_directly_in_cron_d_is_placed_below_the_root(cron_file: str) -> None:
    config = parse_config(CONFIG, agent_toml(cron=f"file = {json.dumps(cron_file)}"))

    assert config.paths.cron_file == Path("/srv/host") / cron_file.lstrip("/")


def test_cron_file_defaults_to_etc_cron_d_cronsync() -> None:
    assert parse_config(CONFIG, agent_toml()).paths.cron_file == Path(
        "/srv/host/etc/cron.d/cronsync"
    )


@pytest.mark.parametrize(
    "cron_file",
    [
        "/etc/crond.d/cronsync",  # a typo: cron would never read it
        "/etc/cron.d/../../../../escaped",  # out of paths.root
        "/etc/cron.d/sub/cronsync",
        "/etc/cron.d/./cronsync",
        "/etc/cron.d//cronsync",
        "//etc/cron.d/cronsync",
        "/etc/cron.d/cronsync/",
        "/etc/cron.d/",
        "/etc/cron.d/..",
        "/etc/crontab",
        "etc/cron.d/cronsync",
        "cronsync",
    ],
)
def test_cron_file_outside_cron_d_is_a_config_error(cron_file: str) -> None:
    message = config_error(agent_toml(cron=f"file = {json.dumps(cron_file)}"))

    expected = f"{CONFIG}:9: cron.file: {cron_file!r} is not a file directly inside /etc/cron.d/"
    assert expected in message


@pytest.mark.parametrize("cron_file", ["/etc/cron.d/cronsync.conf", "/etc/cron.d/x~"])
def test_cron_file_name_cron_ignores_is_a_config_error(cron_file: str) -> None:
    message = config_error(agent_toml(cron=f"file = {json.dumps(cron_file)}"))

    assert f"cron.file: {cron_file!r}: the file name may have only letters" in message


# -- relative paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        ("../../remote.git", True),
        ("remote.git", True),
        ("./jobs", True),
        ("jobs/sub:dir", True),  # a slash before the colon: a local path to git
        ("~/jobs.git", True),  # git does not expand ~ in a URL
        ("/srv/jobs.git", False),
        ("https://git.example.com/batch/jobs.git", False),
        ("ssh://git@git.example.com/batch/jobs.git", False),
        ("file:///srv/jobs.git", False),
        ("git://git.example.com/jobs.git", False),
        ("git@git.example.com:batch/jobs.git", False),  # scp-like
        ("git.example.com:jobs.git", False),
        ("codecommit::eu-west-1://jobs", False),  # a remote helper
    ],
)
def test_is_relative_path_follows_gits_reading_of_a_url(url: str, relative: bool) -> None:
    assert is_relative_path(url) is relative


def test_relative_repo_url_is_a_config_error() -> None:
    message = config_error(agent_toml(url="../../remote.git"))

    assert message.endswith(
        f"{CONFIG}:2: repo.url: a relative path; use an absolute path or a URL"
    ), message


@pytest.mark.parametrize("url", ["git@git.example.com:batch/jobs.git", "file:///srv/jobs.git"])
def test_urls_and_scp_addresses_are_kept_as_written(url: str) -> None:
    assert parse_config(CONFIG, agent_toml(url=url)).repo_url == url


@pytest.mark.parametrize("root", ["sandbox", "./root", "../host"])
def test_relative_paths_root_is_a_config_error(root: str) -> None:
    message = config_error(agent_toml(root=root))

    expected = f"{CONFIG}:7: paths.root: {root!r} is a relative path; use an absolute path"
    assert expected in message


def test_relative_aws_credentials_file_is_a_config_error() -> None:
    text = agent_toml() + '[aws]\ncredentials_file = "aws-credentials"\n'
    message = config_error(text)

    assert "aws.credentials_file: 'aws-credentials' is a relative path" in message
    absolute = agent_toml() + '[aws]\ncredentials_file = "/etc/cronsync/aws-credentials"\n'
    assert parse_config(CONFIG, absolute) is not None


def test_every_problem_is_reported_at_once() -> None:
    message = config_error(agent_toml(url="jobs.git", root="root", cron='file = "/tmp/x"'))

    assert "repo.url: a relative path" in message
    assert "paths.root: 'root' is a relative path" in message
    assert "cron.file: '/tmp/x' is not a file directly inside" in message


# -- byte-order mark ------------------------------------------------------------------

BOM_LINE = ":1: starts with a UTF-8 byte-order mark; save the file without it"


def test_agent_config_with_a_byte_order_mark_says_so(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b"\xef\xbb\xbf" + agent_toml().encode())

    with pytest.raises(ConfigError) as raised:
        load_config(str(path))

    assert raised.value.message == f"invalid agent config: {path}{BOM_LINE}"


def test_the_same_file_without_the_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(agent_toml().encode())

    assert load_config(str(path)).repo_url == "/srv/jobs.git"


def test_parse_toml_reports_a_byte_order_mark_on_line_1() -> None:
    doc, problems = parse_toml("jobs/report.toml", '\ufeffdescription = "x"\n')

    assert doc is None
    assert [p.format() for p in problems] == [f"jobs/report.toml{BOM_LINE}"]


def test_fleet_is_off_unless_a_table_is_named() -> None:
    config = parse_config(Path("/etc/cronsync/agent.toml"), agent_toml())
    assert config.fleet.table is None
    assert config.fleet.lease_ttl == 300


def test_fleet_table_and_lease_ttl_are_read() -> None:
    text = agent_toml() + '\n[fleet]\ntable = "cronsync-fleet"\nlease_ttl = "2m"\n'
    config = parse_config(Path("/etc/cronsync/agent.toml"), text)
    assert (config.fleet.table, config.fleet.lease_ttl) == ("cronsync-fleet", 120)


def test_a_lease_ttl_under_30s_is_a_config_error() -> None:
    text = agent_toml() + '\n[fleet]\ntable = "cronsync-fleet"\nlease_ttl = "10s"\n'
    assert "fleet.lease_ttl: must be at least 30s" in config_error(text)
