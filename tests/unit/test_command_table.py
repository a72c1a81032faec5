"""The command table of docs/reference/command-line.md ("## The commands", written by
hand: what each command does and its exit codes) lists every verb of the parser and every
option of each (its first column), and no verb the parser lacks."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from cronsync.cli.main import build_parser

TOP = Path(__file__).resolve().parents[2]
PAGE = TOP / "docs" / "reference" / "command-line.md"
# Options every verb takes, documented once below the table
SHARED = {"-h", "--help", "--config", "-v", "--verbose"}


def verb_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each verb's parser, by its name (an alias's name left out)."""
    (verbs,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    found: dict[str, argparse.ArgumentParser] = {}
    for name, parser in verbs.choices.items():
        if parser not in found.values():
            found[name] = parser
    return found


def command_cells() -> dict[str, str]:
    """The first cell of each row of the page's "## The commands" table, by verb."""
    page = PAGE.read_text(encoding="utf-8")
    section = page[page.index("\n## The commands\n") :]
    section = section[: section.index("\n## ", 1)]
    cells = {}
    for line in section.splitlines():
        found = re.match(r"\| `cronsync ([a-z-]+)([^|]|\\\|)*`", line)
        if found:
            cells[found.group(1)] = found.group(0)
    return cells


def documented(option: str, cell: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", cell) is not None


@pytest.mark.parametrize("verb", sorted(verb_parsers()))
def test_every_verb_has_a_row_listing_every_option(verb: str) -> None:
    cells = command_cells()
    assert verb in cells, f"command-line.md's table has no row for `cronsync {verb}`"
    parser = verb_parsers()[verb]
    options = {o for a in parser._actions for o in a.option_strings} - SHARED
    missing = sorted(o for o in options if not documented(o, cells[verb]))
    assert missing == [], f"command-line.md's row of `cronsync {verb}` lacks {missing}"
    positionals = [a.metavar or a.dest.upper() for a in parser._actions if not a.option_strings]
    assert [p for p in positionals if str(p) not in cells[verb]] == []


def test_the_table_has_no_row_for_a_verb_the_parser_lacks() -> None:
    assert sorted(set(command_cells()) - set(verb_parsers())) == []
