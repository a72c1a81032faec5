"""The package layout matches what docs/architecture.md and the import contracts say."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tests run on 3.11
    import tomli as tomllib

TOP = Path(__file__).resolve().parents[2]
PACKAGE = TOP / "agent" / "cronsync"
ARCHITECTURE = TOP / "docs" / "architecture.md"


def parts() -> list[str]:
    return sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


def contract_layers() -> list[str]:
    config = tomllib.loads((TOP / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in contracts if c["type"] == "layers"]
    assert layers["containers"] == ["cronsync"] and layers["exhaustive"] is True
    return [str(layer) for layer in layers["layers"]]


def test_few_modules_stay_at_the_top_of_the_package() -> None:
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]


def test_every_part_says_what_it_owns_and_may_import() -> None:
    for part in parts():
        source = (PACKAGE / part / "__init__.py").read_text(encoding="utf-8")
        tree = ast.parse(source)
        doc = ast.get_docstring(tree)
        assert doc and "May import" in doc, f"{part}/__init__.py needs its docstring"
        assert len(tree.body) == 1, f"{part}/__init__.py holds its docstring only"


def test_every_part_has_its_place_in_the_layers() -> None:
    placed = sorted(name.strip() for layer in contract_layers() for name in layer.split("|"))
    assert placed == parts()


def test_architecture_page_shows_the_layers_of_the_contract() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text[text.index("## The layers") :]
    block = block[block.index("```\n") + 4 :]
    block = block[: block.index("```")]
    shown = [re.split(r"\s{2,}", line.strip())[0] for line in block.splitlines() if line.strip()]
    assert shown == contract_layers(), "docs/architecture.md: the layers differ from pyproject's"


def test_readme_links_the_architecture_page() -> None:
    assert "docs/architecture.md" in (TOP / "README.md").read_text(encoding="utf-8")
