"""The comments ``cronsync adopt`` leaves in a crontab (migrate/adoptmark, pure)."""

from __future__ import annotations

from cronsync.migrate.adoptmark import (
    ADOPTED,
    OLD_ADOPTED,
    adopted_text,
    holds_a_secret,
    is_adopted,
    locate,
    mask_line,
    retired_line,
    retired_setting,
    unused_secret_settings,
)
from cronsync.migrate.jobwriter import Origin, line_digest, parse_origins

LINE = b"30 2 * * * root mysqldump -u backup -pS3cretZx --single-transaction shop"


def origin_of(line: bytes, number: int = 5) -> Origin:
    return Origin("/etc/cron.d/backup", number, line_digest(line))


def test_a_retired_line_names_its_job_and_masks_the_secret() -> None:
    retired = retired_line(LINE, "mysqldump", origin_of(LINE))
    assert retired == (
        b"# cronsync-adopted (job mysqldump, line 5): 30 2 * * * root mysqldump -u backup "
        b"-p*** --single-transaction shop"
    )
    assert retired.startswith(ADOPTED)
    assert is_adopted(retired, "mysqldump", origin_of(LINE))
    assert not is_adopted(retired, "mysqldump-2", origin_of(LINE))
    assert not is_adopted(retired, "mysqldump", origin_of(LINE, 6))
    assert not holds_a_secret(retired)


def test_bytes_that_are_not_utf8_and_a_carriage_return_are_kept() -> None:
    line = b"0 1 * * * root redis-cli -a S3cretZx BGSAVE # caf\xe9\r"
    assert mask_line(line) == b"0 1 * * * root redis-cli -a *** BGSAVE # caf\xe9\r"


def test_a_line_adopted_in_clear_is_known_by_its_digest_and_rewritten_masked() -> None:
    old = OLD_ADOPTED + LINE
    assert is_adopted(old, "any-job", origin_of(LINE))
    assert not is_adopted(old, "any-job", origin_of(LINE + b" "))
    assert holds_a_secret(old)
    assert adopted_text(old) == LINE
    assert b"S3cretZx" not in retired_line(old, "mysqldump", origin_of(LINE))


def test_locate_finds_a_moved_line_and_its_comment() -> None:
    lines = [b"# added above", b"MAILTO=x", b"", b"", b"", LINE]
    assert locate(lines, "mysqldump", origin_of(LINE)) == (5, None)
    lines[5] = retired_line(LINE, "mysqldump", origin_of(LINE))
    assert locate(lines, "mysqldump", origin_of(LINE)) == (None, 5)
    assert locate(lines, "other", origin_of(LINE)) == (None, None)


def test_a_secret_setting_is_unused_only_when_no_line_below_still_runs() -> None:
    lines = [
        b"PGPASSWORD=S3cretZx",
        b"MAILTO=ops@example.com",
        b"15 2 * * * postgres pg_dump reviews",
        b"# a comment",
        b"",
    ]
    assert unused_secret_settings(lines, {2}) == [0]
    assert unused_secret_settings(lines, set()) == []  # the entry still runs with it
    assert unused_secret_settings([*lines, b"61 * * * * root broken"], {2}) == []
    assert unused_secret_settings([b"PATH=/usr/bin:/bin", lines[2]], {1}) == []


def test_a_retired_setting_is_masked() -> None:
    assert retired_setting(b"DB_PASSWORD = 'S3cretZx'") == (
        b"# cronsync-adopted (secret setting no job uses now): DB_PASSWORD = '***'"
    )


def test_the_import_records_a_digest_of_the_masked_line_not_of_the_line() -> None:
    origin = Origin.of_line("/etc/cron.d/backup", 5, LINE)
    assert origin.masked and origin.sha256 != line_digest(LINE)
    assert origin.sha256 == line_digest(mask_line(LINE)) and b"S3cretZx" not in mask_line(LINE)
    assert "masked-sha256=" in origin.comment() and " sha256=" not in origin.comment()
    assert parse_origins(origin.comment() + "\n") == [origin]
    assert origin.matches(LINE) and not origin.matches(LINE.replace(b"shop", b"shop2"))
    # the secret is not in the digest, so a line whose only change is the secret matches
    assert origin.matches(LINE.replace(b"S3cretZx", b"0therZx9"))


def test_masked_origins_locate_lines_and_the_comments_of_both_forms() -> None:
    origin = Origin.of_line("/etc/cron.d/backup", 5, LINE)
    lines = [b"# added above", b"", b"", b"", b"", LINE]
    assert locate(lines, "mysqldump", origin) == (5, None)
    lines[5] = retired_line(LINE, "mysqldump", origin)
    assert locate(lines, "mysqldump", origin) == (None, 5)
    assert is_adopted(OLD_ADOPTED + LINE, "any-job", origin)


def test_origins_of_an_older_import_keep_their_digest_of_the_line() -> None:
    comment = f"# cronsync-import: source=/etc/crontab line=3 sha256={line_digest(LINE)}"
    (origin,) = parse_origins(comment + "\n")
    assert not origin.masked and origin.comment() == comment
    assert origin.matches(LINE) and not origin.matches(LINE.replace(b"S3cretZx", b"0therZx9"))
