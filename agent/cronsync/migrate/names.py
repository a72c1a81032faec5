"""Name an imported job after the script or program its command runs (pure).

``/usr/local/bin/backup-db.sh --full`` -> ``backup-db``; ``php /var/www/app/artisan
schedule:run`` -> ``artisan-schedule-run``; ``cd /x && ./run.sh`` -> ``run``;
``test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }`` ->
``cron-daily``; ``run-parts /etc/periodic/15min`` -> ``run-parts-15min``. Looked
through (``argv``): setup commands (``cd``, ``test``, ``echo``...), reserved
words (``if``, ``then``...), variable assignments and wrappers (``nice``, ``flock
LOCK``, ``timeout 60``, ``sudo -u U``, ``envdir DIR``, ``chpst``, ``setlock``...); a
command string (``sh -c '…'``, ``su - U -c '…'``, ``flock LOCK -c '…'``) is read for
what it runs; an interpreter's script names the job, with its subcommand. Names are
lowercase ``[a-z0-9_-]``, start with a letter and have at most 64 characters.

Of several commands of one name (:func:`distinct_names`), the first keeps it and each
other gets the first argument that tells it apart (``rsnapshot alpha``, ``rsnapshot
daily`` -> ``rsnapshot``, ``rsnapshot-daily``); :func:`unique_name` then adds ``-2``,
``-3``... to what is still the same, in source order.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Optional

from cronsync.crontab.line import split_percent
from cronsync.crontab.shellread import escape_percents, percent_cut
from cronsync.migrate import argv as importargv
from cronsync.migrate.command import word_set

MAX_NAME = 64
_INTERPRETER = re.compile(
    r"sh|bash|dash|ksh|zsh|python[0-9.]*|perl|ruby|node|nodejs|php[0-9.]*|Rscript|java|run-parts"
)
_FAMILY = re.compile(r"[a-zA-Z]+")
_INTERPRETER_VALUES = {  # options that take a value, by interpreter family
    "python": {"-W", "-X", "-Q"},
    "php": {"-c", "-d", "-z", "-t"},
    "perl": {"-I", "-M", "-m"},
    "ruby": {"-I", "-r", "-C", "-E"},
    "node": {"-r", "--require", "--import", "--loader", "--experimental-loader"},
    "nodejs": {"-r", "--require", "--import", "--loader"},
    "java": {"-cp", "-classpath", "--class-path", "-p", "--module-path"},
    "run": {"-a", "--arg", "-u", "--umask", "--regex"},
}
_CODE_OPTIONS = {  # options whose value is program text: nothing to name the job after
    "python": {"-c"},
    "perl": {"-e", "-E"},
    "ruby": {"-e"},
    "node": {"-e", "-p", "--eval", "--print"},
    "nodejs": {"-e", "-p", "--eval", "--print"},
    "php": {"-r"},
    "Rscript": {"-e"},
}
_EXTENSION = re.compile(
    r"\.(sh|bash|py|php|pl|rb|js|mjs|ts|r|jar|ksh|zsh|awk|sql|cron|bat)$", re.IGNORECASE
)
_NOT_NAME_CHARS = re.compile(r"(?:[^a-z0-9_]|-)+")  # a run (dashes too) becomes one '-'
_LEADING_NON_LETTERS = re.compile(r"^[^a-z]+")
_SUBCOMMAND = re.compile(r"[A-Za-z][A-Za-z0-9:._-]{0,31}")
_MAX_TOKEN = 24
_PLAIN_DIRS = word_set(
    "usr bin sbin local opt var srv etc lib lib64 libexec home root tmp share http: https:"
)


def _stem(path: str) -> str:
    return _EXTENSION.sub("", posixpath.basename(path.rstrip("/")), count=1) or path


def _family(program: str) -> str:
    match = _FAMILY.match(program)
    return match[0] if match else program


def _script_index(program: str, args: list[str]) -> Optional[int]:
    """The index in ``args`` of the script an interpreter runs, or None."""
    family = _family(program)
    values = _INTERPRETER_VALUES.get(family, {"-o", "-O", "+o", "+O"})
    code = _CODE_OPTIONS.get(family, {"-c"} if importargv.SHELLS.fullmatch(program) else set())
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg in code:
            return None
        elif arg in ("-m", "-jar"):
            return index + 1 if index + 1 < len(args) else None
        elif arg.startswith(("-", "+")) and len(arg) > 1:
            skip = arg in values
        else:
            return index
    return None


def _interpreted(program: str, args: list[str]) -> Optional[str]:
    """Name what an interpreter runs (its script and a subcommand), if anything."""
    index = _script_index(program, args)
    if index is None:
        return None
    script = args[index]
    if program == "run-parts":
        name = posixpath.basename(script.rstrip("/"))
        return name if name[:1].isalpha() else f"run-parts-{name}"
    name = _stem(script)
    rest = args[index + 1 : index + 2]
    if rest and _SUBCOMMAND.fullmatch(rest[0]):
        name += "-" + rest[0]
    return name


def _name_argv(argv: list[str]) -> str:
    program = posixpath.basename(argv[0])
    if _INTERPRETER.fullmatch(program):
        return _interpreted(program, argv[1:]) or program
    return _stem(argv[0])


def _clean(text: str) -> str:
    name = _NOT_NAME_CHARS.sub("-", text.lower())
    return _LEADING_NON_LETTERS.sub("", name)[:MAX_NAME].rstrip("-_")


def clean_name(text: str) -> str:
    """Return ``text`` as a job name: lowercase ``[a-z0-9_-]``, starting with a letter,
    at most 64 characters; ``job`` when nothing usable is left."""
    return _clean(text) or "job"


def derive_name(command: str) -> str:
    """Name a job after the script or program its command runs.

    Args:
        command: the shell command (secrets already masked: the name is never built
            from a value).
    Returns:
        a valid job name (:func:`clean_name`), not yet made unique.
    """
    return _derive(*_parse(command))


_Parsed = tuple[list[str], Optional[list[str]]]


def _parse(command: str) -> _Parsed:
    words = importargv.shell_words(command)
    return words, importargv.choose(words)


def _derive(words: list[str], chosen: Optional[list[str]]) -> str:
    name = _clean(_name_argv(chosen)) if chosen else ""
    if name:
        return name
    # the program gave nothing usable ("2024 /x/yearly.sh"): the first word that does,
    # plain words before options
    ordered = [w for w in words if not w.startswith("-")] + [w for w in words if w[:1] == "-"]
    return next((n for n in (_clean(_stem(w)) for w in ordered) if n), "job")


def name_source(command: str) -> str:
    """Return the shell text to name a job after: what cron runs (up to the first
    unescaped ``%``), or what was meant when that ``%`` cuts it inside ``$( )`` or quotes
    (``sleep $(( RANDOM % 60 )) && /x/report.sh`` is named after ``report.sh``).

    Args:
        command: the command field as written (secrets masked).
    """
    cut = percent_cut(command) if "%" in command else None
    if cut is not None and cut.fixable:
        command = escape_percents(command, cut.literal)
    return split_percent(command)[0]


def _word_tokens(word: str) -> list[str]:
    if word.startswith("-") and not word.startswith("--"):
        return []  # a short option says little
    if "/" not in word:
        return [word]
    parts = [p for p in word.split("/") if p]
    parts[-1:] = [_stem(parts[-1])] if parts else []
    return [p for p in reversed(parts) if p not in _PLAIN_DIRS]  # the deepest first


def name_tokens(command: str) -> list[str]:
    """Return the words that could tell a command from others of the same name, in
    order: its arguments (a path's deepest parts first), its program's folders, and
    the folders it changes to (``cd DIR``); each cleaned like a name, short, with a
    letter.

    Args:
        command: the shell command (secrets masked).
    """
    return _tokens(*_parse(command))


def _tokens(words: list[str], parsed: Optional[list[str]]) -> list[str]:
    chosen = parsed or []
    raw = [t for arg in chosen[1:] for t in _word_tokens(arg)]
    raw += _word_tokens(chosen[0])[1:] if chosen else []
    for segment in importargv.segments(words):
        if segment[0] == "cd" and len(segment) > 1:
            raw += _word_tokens(segment[1])
    tokens = []
    for token in raw:
        cleaned = _NOT_NAME_CHARS.sub("-", token.lower()).strip("-_")
        usable = 1 < len(cleaned) <= _MAX_TOKEN and re.search("[a-z]", cleaned)
        if usable and cleaned not in tokens:
            tokens.append(cleaned)
    return tokens


def _distinguish(
    members: Sequence[tuple[str, list[str]]], prefix: str, depth: int, found: dict[str, str]
) -> None:
    """Give each command of ``members`` (with its unused tokens) ``prefix`` and the
    first token the others do not all share; again for those still alike."""
    if len(members) == 1 or depth == 3:
        found.update((command, prefix) for command, _tokens in members)
        return
    common = set(members[0][1]).intersection(*(set(tokens) for _c, tokens in members[1:]))
    groups: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    used = common.union(prefix.split("-"))
    for command, tokens in members:
        rest = [t for t in tokens if t not in used]
        groups[rest[0] if rest else ""].append((command, rest[1:]))
    for token, group in groups.items():
        name = clean_name(f"{prefix}-{token}") if token else prefix
        if token and len(group) > 1:
            _distinguish(group, name, depth + 1, found)
        else:
            found.update((command, name) for command, _tokens in group)


def distinct_names(commands: Iterable[str]) -> dict[str, str]:
    """Name each command (:func:`derive_name`); where several distinct commands get the
    same name, the first keeps it and each other gets the first token
    (:func:`name_tokens`) that tells it from the rest.

    Args:
        commands: the shell commands of every job about to be imported (secrets
            masked), in source order, repeats allowed.
    Returns:
        command -> a valid job name, not yet made unique (the same command twice, or
        commands nothing tells apart, still share one).
    """
    parsed = {command: _parse(command) for command in commands}
    by_name: dict[str, list[str]] = defaultdict(list)
    for command, (words, chosen) in parsed.items():
        by_name[_derive(words, chosen)].append(command)
    found: dict[str, str] = {}
    for name, members in by_name.items():
        if len(members) == 1:
            found[members[0]] = name
        else:
            _distinguish([(c, _tokens(*parsed[c])) for c in members], name, 0, found)
            found[members[0]] = name  # the first keeps its name
    return found


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
