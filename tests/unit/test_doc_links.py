"""Every relative link of README.md and docs/ leads to a file of the repository, and every
``#anchor`` to a heading of the page it names (as GitHub makes anchors from headings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
PAGES = [TOP / "README.md", *sorted((TOP / "docs").rglob("*.md"))]
# Pages other branches write at the same time as the docs split (issue 11, issue 14):
# tolerated while absent, checked like any page once merged.
PENDING: set[str] = set()  # pages being written elsewhere, allowed to be missing
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code, where a link is no link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to ``-``."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings (a repeated one gets ``-1``, ``-2``, ...)."""
    found: set[str] = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    for line in text.splitlines():
        heading = re.match(r"#{1,6} (.*)", line)
        if heading:
            base = slug(heading.group(1))
            name, number = base, 0
            while name in found:
                number += 1
                name = f"{base}-{number}"
            found.add(name)
    return found


def broken_links(page: Path, top: Path = TOP) -> list[str]:
    """Each relative link of ``page`` (a page of the repository ``top``) that leads
    nowhere, with why."""
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if top not in linked.parents and linked != top:
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            if str(linked.relative_to(top)) not in PENDING:
                broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(TOP)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_checker_finds_missing_files_anchors_and_escapes(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n## Its part\n", encoding="utf-8")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Title\n[a](#title) [b](#nothing) `[c](nowhere.md)`\n"
        "[d](other.md#its-part) [e](other.md#no-part) [f](missing.md) [g](../../x.md)\n"
        "[h](https://example.com/x) ![i](picture.png)\n```\n[j](in-code.md)\n```\n",
        encoding="utf-8",
    )

    assert broken_links(page, tmp_path) == [
        "#nothing: no heading with anchor #nothing",
        "other.md#no-part: no heading with anchor #no-part",
        "missing.md: no such file",
        "../../x.md: outside the repository",
    ]


def test_anchors_follow_githubs_rules() -> None:
    assert slug("Host config (`/etc/cronsync/agent.toml`)") == "host-config-etccronsyncagenttoml"
    assert slug("Leaving the host: export") == "leaving-the-host-export"
    assert slug("Who can read what (the trust model)") == "who-can-read-what-the-trust-model"
