"""Name an imported job after the script or program its command runs (pure).

``/usr/local/bin/backup-db.sh --full`` -> ``backup-db``; ``php /var/www/app/artisan
schedule:run`` -> ``artisan-schedule-run``; ``cd /x && ./run.sh`` -> ``run``;
``test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }`` ->
``cron-daily``. Setup commands (``cd``, ``test``, ``echo``...), variable assignments and
wrappers (``nice``, ``flock LOCK``, ``timeout 60``, ``sudo -u U``) are looked through;
an interpreter's script names the job, with its subcommand. Names are lowercase
``[a-z0-9_-]``, start with a letter and have at most 64 characters; :func:`unique_name`
adds ``-2``, ``-3``... in source order.
"""

from __future__ import annotations

import posixpath
import re
from typing import Optional

from .importcmd import ASSIGNMENT, word_set

MAX_NAME = 64
_SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")", ";;", "|&", "{", "}", "!"})
_SETUP = word_set(
    "cd test [ true false : echo printf cat sleep export set umask ulimit source . "
    "exit mkdir rm touch date"
)
_WRAPPERS = {
    "nice": {"-n"},
    "ionice": {"-c", "-n", "-p"},
    "nohup": set(),
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "flock": {"-w", "-E", "--timeout", "--conflict-exit-code"},
    "env": {"-u", "-C"},
    "sudo": {"-u", "-g", "-h", "-p", "-C"},
    "chronic": set(),
    "cronic": set(),
    "time": set(),
    "exec": {"-a"},
    "command": set(),
    "setsid": set(),
    "stdbuf": {"-i", "-o", "-e"},
    "run-one": set(),
}
_TAKES_POSITIONAL = frozenset({"timeout", "flock"})
_INTERPRETER = re.compile(
    r"sh|bash|dash|ksh|zsh|python[0-9.]*|perl|ruby|node|nodejs|php[0-9.]*|Rscript|java|run-parts"
)
_EXTENSION = re.compile(
    r"\.(sh|bash|py|php|pl|rb|js|mjs|ts|r|jar|ksh|zsh|awk|sql|cron|bat)$", re.IGNORECASE
)
_NUMBERISH = re.compile(r"[0-9][0-9.]*[smhd]?")
_NOT_NAME_CHARS = re.compile(r"(?:[^a-z0-9_]|-)+")  # a run (dashes too) becomes one '-'
_LEADING_NON_LETTERS = re.compile(r"^[^a-z]+")
_SUBCOMMAND = re.compile(r"[A-Za-z][A-Za-z0-9:._-]{0,31}")


_TOKEN = re.compile(r"""(?:[^\s'"\\|&;<>()]+|'[^']*'?|"(?:\\.|[^"\\])*"?|\\.?)+|[|&;<>()]+""")
_QUOTED = re.compile(r"""'([^']*)'?|"((?:\\.|[^"\\])*)"?|\\(.?)""")


def _unquote(match: re.Match[str]) -> str:
    return next((group for group in match.groups() if group is not None), "")


def _words(text: str) -> list[str]:
    """Split a shell line into words and operators (quotes removed), like ``shlex`` with
    ``punctuation_chars``; good enough for a name, and never fails."""
    words = []
    for token in _TOKEN.findall(text):
        words.append(token if token[0] in "|&;<>()" else _QUOTED.sub(_unquote, token))
    return words


def _segments(words: list[str]) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    skip = False
    for word in words:
        if word in _SEPARATORS:
            segments.append([])
        elif skip:
            skip = False
        elif word and set(word) <= set("<>&|") and ("<" in word or ">" in word):
            skip = True  # a redirection: the next word is its target
        else:
            segments[-1].append(word)
    return [segment for segment in segments if segment]


def _unwrap(words: list[str]) -> list[str]:
    """Drop assignments and wrappers (``nice -n 5``, ``flock -n LOCK``) in front."""
    index = 0
    while index < len(words):
        word = words[index]
        if ASSIGNMENT.match(word):
            index += 1
            continue
        name = posixpath.basename(word)
        if name not in _WRAPPERS:
            break
        index += 1
        positional = name in _TAKES_POSITIONAL
        while index < len(words):
            option = words[index]
            if option.startswith("-"):
                index += 2 if option in _WRAPPERS[name] else 1
            elif positional or _NUMBERISH.fullmatch(option):
                positional, index = False, index + 1
            else:
                break
    return words[index:]


def _stem(path: str) -> str:
    return _EXTENSION.sub("", posixpath.basename(path.rstrip("/")), count=1) or path


def _interpreted(program: str, args: list[str], depth: int) -> Optional[str]:
    """Name what an interpreter runs (its script and a subcommand), if anything."""
    for index, arg in enumerate(args):
        if arg == "-c":
            shell = program.endswith("sh") and depth == 0 and index + 1 < len(args)
            return _name_words(_words(args[index + 1]), depth + 1) if shell else None
        if arg in ("-m", "-jar") and index + 1 < len(args):
            return _stem(args[index + 1])
        if arg.startswith("-"):
            continue
        name = posixpath.basename(arg.rstrip("/")) if program == "run-parts" else _stem(arg)
        rest = args[index + 1 : index + 2]
        if rest and program != "run-parts" and _SUBCOMMAND.fullmatch(rest[0]):
            name += "-" + rest[0]
        return name
    return None


def _name_words(words: list[str], depth: int = 0) -> Optional[str]:
    candidates = [_unwrap(segment) for segment in _segments(words)]
    candidates = [c for c in candidates if c]
    chosen = next((c for c in candidates if posixpath.basename(c[0]) not in _SETUP), None)
    chosen = chosen or (candidates[0] if candidates else None)
    if not chosen:
        return None
    program = posixpath.basename(chosen[0])
    if _INTERPRETER.fullmatch(program):
        return _interpreted(program, chosen[1:], depth) or program
    return _stem(chosen[0])


def clean_name(text: str) -> str:
    """Return ``text`` as a job name: lowercase ``[a-z0-9_-]``, starting with a letter,
    at most 64 characters; ``job`` when nothing usable is left."""
    name = _NOT_NAME_CHARS.sub("-", text.lower())
    name = _LEADING_NON_LETTERS.sub("", name)[:MAX_NAME].rstrip("-_")
    return name or "job"


def derive_name(command: str) -> str:
    """Name a job after the script or program its command runs.

    Args:
        command: the shell command (secrets already masked: the name is never built
            from a value).
    Returns:
        a valid job name (:func:`clean_name`), not yet made unique.
    """
    words = _words(command)
    name = clean_name(_name_words(words) or "")
    if name != "job":
        return name
    # the program gave nothing usable ("2024 /x/yearly.sh"): the first word that does
    return next((n for n in (clean_name(_stem(w)) for w in words) if n != "job"), "job")


def unique_name(base: str, taken: set[str], counters: Optional[dict[str, int]] = None) -> str:
    """Return ``base``, else ``base-2``, ``base-3``... not in ``taken`` (and add it).

    Args:
        counters: the last suffix used per base, kept by the caller across calls so
            that thousands of jobs of one name stay linear.
    """
    number = counters.get(base, 1) if counters is not None else 1
    name = base if number == 1 else _suffixed(base, number)
    while name in taken:
        number += 1
        name = _suffixed(base, number)
    if counters is not None:
        counters[base] = number
    taken.add(name)
    return name


def _suffixed(base: str, number: int) -> str:
    suffix = f"-{number}"
    return base[: MAX_NAME - len(suffix)].rstrip("-_") + suffix
