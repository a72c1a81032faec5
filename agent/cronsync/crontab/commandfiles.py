"""The files a crontab command names: where it redirects its output, which script it runs.

Pure: a command (as the inventory shows it, secrets masked) in, paths out. Shell syntax
is read only as far as these need (redirections, the first word or the word after an
interpreter); the adapter (``cronsync.migrate.lifecheck``) looks the paths up on the host
for the evidence of life (``evidence``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from cronsync.crontab.records import InventoryEntry

DEV_NULL = "/dev/null"
_REDIRECT = re.compile(
    r"(?:^|(?<=[\s;|&(]))(?P<fd>[0-9]|&)?>(?P<append>>)?\s*(?P<target>[^\s;|&<>()]+)"
)
_INTERPRETERS = frozenset(
    {"sh", "bash", "dash", "python", "python3", "perl", "php", "ruby", "node"}
)


@dataclass(frozen=True)
class Redirect:
    """A file a command writes to by redirection: ``fd`` 1 (stdout, ``&>`` too) or 2.
    ``computed``: the shell makes its name when the job runs (``$(date +%F)``, ``$HOME``,
    a glob): ``path`` is the word as written, not a file to look at."""

    fd: int
    path: str
    computed: bool = False


def _word_from(text: str, start: int) -> str:
    """The shell word starting at ``start``: up to a blank or ``;|&<>`` outside quotes,
    ``$(...)``, ``(...)`` and backquotes."""
    depth, quote, end = 0, "", start
    while end < len(text):
        char = text[end]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth and (char.isspace() or char in ";|&<>()"):
            break
        end += 1
    return text[start:end]


def _literal(word: str) -> tuple[str, bool]:
    """The file name a shell word stands for, its quotes removed, and whether the shell
    makes it when the job runs (an expansion outside single quotes, a glob, a
    backslash, an open quote: not guessed)."""
    out: list[str] = []
    quote, computed = "", False
    for char in word:
        if quote == "'" and char != "'":
            out.append(char)
        elif char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        elif char in "$`\\" or (not quote and char in "*?[{~"):
            computed = True
            out.append(char)
        else:
            out.append(char)
    return "".join(out), computed or bool(quote)


def redirect_targets(shell_command: str) -> list[Redirect]:
    """Return the files ``shell_command`` redirects stdout or stderr to, in order
    (``> f``, ``>> f``, ``2> f``, ``&> f``; ``>&2``-style duplications are not files).
    Quotes are read as the shell reads them; a name the shell expands is marked
    ``computed`` (its word as written); shell syntax beyond that is not interpreted."""
    found = []
    for match in _REDIRECT.finditer(shell_command):
        fd = match["fd"] or "1"
        word = _word_from(shell_command, match.start("target"))
        if not word or word.startswith("&") or fd not in ("1", "2", "&"):
            continue
        path, computed = _literal(word)
        found.append(Redirect(2 if fd == "2" else 1, word if computed else path, computed))
    return found


def script_of(shell_command: str) -> Optional[str]:
    """Return the script a command runs by absolute path (its first word, or the word
    after an interpreter: ``bash /opt/x.sh``), or None."""
    words = shell_command.split()
    if not words:
        return None
    if words[0].startswith("/"):
        return words[0]
    if words[0] in _INTERPRETERS and len(words) > 1 and words[1].startswith("/"):
        return words[1]
    return None


def paths_of(entry: InventoryEntry) -> list[str]:
    """Return the absolute paths the adapter should look at for ``entry``: the files it
    writes to (``/dev/null`` aside) and its script."""
    paths = [
        r.path
        for r in redirect_targets(entry.shell_command)
        if r.path.startswith("/") and not r.computed
    ]
    script = script_of(entry.shell_command)
    return [p for p in dict.fromkeys([*paths, *([script] if script else [])]) if p != DEV_NULL]
