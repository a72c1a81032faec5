"""The TOML writer of ``cronsync import`` (cronsync.migrate.jobwriter): job files, cronsync.toml,
secrets files and origin comments, checked against ``tomllib`` and cronsync's own parser."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.core.manifest import SourceFile, parse_job, parse_repo_config
from cronsync.core.model import Defaults
from cronsync.core.textshow import code_span, visible
from cronsync.migrate.jobwriter import (
    JobModel,
    Origin,
    line_digest,
    parse_origins,
    render_job,
    render_repo_config,
    render_secrets,
    toml_key,
    toml_string,
    toml_value,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DIGEST = "a" * 64
TRICKY = [
    "",
    "plain",
    'say "hi"',
    "back\\slash\\",
    "tab\there",
    "crlf\r\n",
    "bell\x07 esc\x1b del\x7f nul\x00",
    "unicode: 日本語 — é",
    '\'single\' and "double" and \\"escaped\\"',
    "printf '%s\\n' 'a' | cat",
    "${HOME} $(id) `date`",
    "\u2028line separator\u2029",
]


def loads(text: str) -> dict[str, object]:
    data: dict[str, object] = tomllib.loads(text)
    return data


@pytest.mark.parametrize("text", TRICKY)
def test_strings_round_trip_through_tomllib(text: str) -> None:
    assert loads(f"k = {toml_string(text)}\n")["k"] == text


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    text = "a\ud800b"
    assert loads(f"k = {toml_string(text)}\n")["k"] == "a\ufffdb"


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_round_trips(text: str) -> None:
    expected = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    assert loads(f"k = {toml_string(text)}\n")["k"] == expected
    assert loads(f"{toml_key(text)} = 1\n") == {expected: 1}


def test_keys_are_bare_when_toml_allows_it() -> None:
    assert toml_key("DB_PASSWORD") == "DB_PASSWORD"
    assert toml_key("a-b_9") == "a-b_9"
    assert toml_key("imported/x") == '"imported/x"'
    assert toml_key("a.b") == '"a.b"'


def test_values() -> None:
    assert toml_value(True) == "true"
    assert toml_value(False) == "false"
    assert toml_value(3) == "3"
    assert toml_value(["bash", "-c", 'echo "x"']) == '["bash", "-c", "echo \\"x\\""]'
    assert loads(f"k = {toml_value(TRICKY)}\n")["k"] == TRICKY


def test_visible_shows_control_characters() -> None:
    assert visible("a\tb\r\n\x01") == "a\\tb\\r\\n\\x01"


def model(**changes: object) -> JobModel:
    fields: dict[str, object] = {
        "name": "backup-db",
        "origins": (Origin("/etc/cron.d/backup", 4, DIGEST),),
        "original": "15 2 * * * postgres /usr/local/bin/backup-db.sh --pw=***\r",
        "description": "TODO: what this job does (imported from /etc/cron.d/backup:4)",
        "owner": "TODO: team or e-mail",
        "schedule": "15 2 * * mon-fri",
        "user": "postgres",
        "shell": "printf '%s\\n' 'a b' | /usr/local/bin/backup-db.sh --pw=\"$PW\"",
        "workdir": "/var/lib/postgresql",
        "env": (("PATH", "/usr/bin:/bin"), ("TITLE", 'say "hi"\t')),
        "secrets": (("PW", "imported/backup-db-PW"),),
        "notes": ("a note\nwith a newline",),
    }
    fields.update(changes)
    return JobModel(**fields)  # type: ignore[arg-type]


def test_a_job_file_parses_and_matches_the_schema() -> None:
    text = render_job(model())
    data = loads(text)
    assert data["shell"] == "printf '%s\\n' 'a b' | /usr/local/bin/backup-db.sh --pw=\"$PW\""
    assert data["env"] == {"PATH": "/usr/bin:/bin", "TITLE": 'say "hi"\t'}
    assert data["secrets"] == {"PW": "imported/backup-db-PW"}
    assert "command" not in data and "enabled" not in data
    job, problems = parse_job(SourceFile("jobs/backup-db.toml", text), Defaults())
    assert problems == [] and job is not None
    assert job.workdir == "/var/lib/postgresql" and job.user == "postgres"
    assert [ref.name for ref in job.secrets] == ["imported/backup-db-PW"]


def test_an_argv_job_and_a_disabled_job() -> None:
    text = render_job(
        model(
            shell=None,
            command=("bash", "-c", "echo 'x'"),
            enabled=False,
            reason="commented out in /etc/crontab:9 before the migration",
            env=(),
            secrets=(),
        )
    )
    data = loads(text)
    assert data["command"] == ["bash", "-c", "echo 'x'"]
    assert data["enabled"] is False
    assert data["reason"].startswith("commented out in /etc/crontab:9")
    assert "[env]" not in text and "[secrets]" not in text
    job, problems = parse_job(SourceFile("jobs/x.toml", text), Defaults())
    assert problems == [] and job is not None and not job.enabled


def test_comments_never_break_out_of_their_line() -> None:
    text = render_job(model(original="x\ny = 1\rz", notes=("n1\nkey = 2",)))
    data = loads(text)
    assert "y" not in data and "key" not in data
    assert text.splitlines()[0] == Origin("/etc/cron.d/backup", 4, DIGEST).comment()


def test_origins_round_trip_with_odd_paths() -> None:
    origins = (
        Origin("/etc/crontab", 12, line_digest(b"0 1 * * * root x")),
        Origin("/srv/crontabs/with space/and%percent\nnewline", 3, DIGEST),
    )
    text = render_job(model(origins=origins))
    assert parse_origins(text) == list(origins)
    assert all(line.startswith("# cronsync-import: source=") for line in text.splitlines()[:2])


def test_origins_are_read_from_the_leading_comments_only() -> None:
    origin = Origin("/etc/crontab", 1, DIGEST).comment()
    assert parse_origins(f"{origin}\r\n# other\n\nkey = 1\n") == [Origin("/etc/crontab", 1, DIGEST)]
    assert parse_origins(f'description = "x"\n{origin}\n') == []
    assert parse_origins(origin.replace("a" * 64, "z" * 64)) == []


def test_line_digest_is_sha256_of_the_bytes() -> None:
    assert line_digest(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_the_repo_config_keeps_the_host_zone_and_cron_overlap() -> None:
    text = render_repo_config("Asia/Tokyo", ["/etc/crontab", "/etc/cron.d/x\ny"])
    defaults, _settings, problems = parse_repo_config(SourceFile("cronsync.toml", text))
    assert problems == []
    assert defaults.timezone == "Asia/Tokyo"
    assert defaults.concurrency == "allow"


def test_a_secrets_file_is_flat_name_value_toml() -> None:
    values = [("imported/a-PW", 'p"w\\1\t'), ("imported/b-TOKEN", "tok\r\n")]
    text = render_secrets(values, ["header line", "with\ncontrol"])
    assert loads(text) == dict(values)
    assert text.startswith("# header line\n# with\\ncontrol\n")


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("tar czf x", "`tar czf x`"),
        ("echo `date +", "``echo `date +``"),
        ("`id`", "`` `id` ``"),
        ("a `` b", "```a `` b```"),
        (" lead", "` lead`"),
        ("", "`  `"),
    ],
)
def test_code_span_fences_any_backticks_inside(text: str, span: str) -> None:
    assert code_span(text) == span
