"""Find the program and arguments a cron command runs, to name the job after (pure).

The shell line is split into words and operators (quotes removed, substitutions
replaced by ``_``); looked through are setup commands (``cd``, ``test``, ``echo``...),
reserved words (``if``, ``then``...), variable assignments and wrappers (``nice``,
``flock LOCK``, ``timeout 60``, ``sudo -u U``, ``envdir DIR``...); a command string
(``sh -c '…'``, ``su - U -c '…'``, ``flock LOCK -c '…'``) is read for what it runs.
Naming the job after the result is ``names``.
"""

from __future__ import annotations

import posixpath
import re
from typing import Optional

from cronsync.migrate.command import ASSIGNMENT, word_set

_SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")", ";;", "|&", "{", "}"})
_SETUP = word_set(
    "cd test [ [[ true false : echo printf cat sleep export set umask ulimit source . "
    "exit mkdir rm touch date fi done esac for case wait"
)
_KEYWORDS = word_set("if then else elif do while until !")
# Setup that only guards or prepares: a line of setup only is named after the rest.
_GUARDS = word_set(
    "cd test [ [[ true false : sleep export set umask ulimit source . exit fi done esac for "
    "case wait"
)
_WRAPPERS = {  # wrapper -> its options that take a value
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"},
    "nohup": set(),
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "flock": {"-w", "-E", "--timeout", "--conflict-exit-code"},
    "env": {"-u", "-C", "--unset", "--chdir"},
    "sudo": {"-u", "-g", "-h", "-p", "-C", "-D", "-R", "-T", "-U", "--user", "--group"},
    "doas": {"-u", "-C"},
    "chronic": set(),
    "cronic": set(),
    "time": {"-f", "-o", "--format", "--output"},
    "exec": {"-a"},
    "command": set(),
    "setsid": set(),
    "stdbuf": {"-i", "-o", "-e"},
    "run-one": set(),
    "run-this-one": set(),
    "envdir": set(),
    "setlock": set(),
    "chpst": set(word_set("-u -U -e -/ -n -l -L -m -d -o -p -f -c -r -t")),
    "softlimit": set(word_set("-m -a -d -o -p -f -c -r -t -s -l")),
    "setuidgid": set(),
    "envuidgid": set(),
    "lockrun": {"-L", "--lockfile"},
    "unbuffer": set(),
    "su": {"-s", "-g", "-G", "-w", "--shell", "--group", "--supp-group"},
    "runuser": {"-u", "-s", "-g", "-G", "-w", "--user", "--shell", "--group"},
}
# Wrappers whose first plain word is theirs (a lock file, a directory, a user...).
_TAKES_POSITIONAL = frozenset({"timeout", "flock", "envdir", "setlock", "setuidgid", "envuidgid"})
# Wrappers that run a command string given with -c (read like sh -c).
_COMMAND_STRING = frozenset({"flock", "su", "runuser"})
SHELLS = re.compile(r"sh|bash|dash|ksh|mksh|zsh|ash")
"""The shells whose ``-c`` string is read for what it runs."""
_NUMBERISH = re.compile(r"[0-9][0-9.]*[smhd]?")
_MAX_DEPTH = 3  # command strings inside command strings

_TOKEN = re.compile(r"""(?:[^\s'"\\|&;<>()]+|'[^']*'?|"(?:\\.|[^"\\])*"?|\\.?)+|[|&;<>()]+""")
_PLAIN = re.compile(r"[^'\"$`]+")
_QUOTED = re.compile(r"""'([^']*)'?|"((?:\\.|[^"\\])*)"?|\\(.?)""")


def _unquote(match: re.Match[str]) -> str:
    return next((group for group in match.groups() if group is not None), "")


def _without_substitutions(text: str) -> str:
    """Replace each ``$( )``, ``$(( ))``, ``${ }`` and backtick substitution outside single
    quotes by ``_``: what they run names nothing (``tar czf www-$(date +%F).tgz``)."""
    if "$(" not in text and "${" not in text and "`" not in text:
        return text
    out, index, quoted = [], 0, False
    while index < len(text):
        plain = _PLAIN.match(text, index)
        if plain is not None and plain.end() > index:
            out.append(plain[0])
            index = plain.end()
            continue
        char = text[index]
        if char == "'" and not quoted:
            end = text.find("'", index + 1)
            if end < 0:
                out.append(text[index:])  # an unclosed quote: the rest as it is
                break
            out.append(text[index : end + 1])
            index = end + 1
            continue
        quoted = quoted != (char == '"')
        end = _substitution_end(text, index)
        out.append("_" if end > index else char)
        index = max(end, index + 1)
    return "".join(out)


def _substitution_end(text: str, index: int) -> int:
    """The index after the substitution starting at ``index``, else ``index``."""
    if text[index] == "`":
        end = text.find("`", index + 1)
        return len(text) if end < 0 else end + 1
    if not text.startswith(("$(", "${"), index):
        return index
    opening, closing = ("(", ")") if text[index + 1] == "(" else ("{", "}")
    depth = 0
    for position in range(index + 1, len(text)):
        depth += {opening: 1, closing: -1}.get(text[position], 0)
        if depth == 0:
            return position + 1
    return len(text)


def shell_words(text: str) -> list[str]:
    """Split a shell line into words and operators (quotes removed), like ``shlex`` with
    ``punctuation_chars``; good enough for a name, and never fails."""
    words = []
    for token in _TOKEN.findall(_without_substitutions(text)):
        words.append(token if token[0] in "|&;<>()" else _QUOTED.sub(_unquote, token))
    return words


def segments(words: list[str]) -> list[list[str]]:
    """Split words (:func:`shell_words`) at the operators into one list per simple
    command, redirections and their targets left out; empty ones dropped."""
    found: list[list[str]] = [[]]
    skip = False
    for word in words:
        if word in _SEPARATORS:
            found.append([])
        elif skip:
            skip = False
        elif word and set(word) <= set("<>&|") and ("<" in word or ">" in word):
            skip = True  # a redirection: the next word is its target
        else:
            found[-1].append(word)
    return [segment for segment in found if segment]


def _takes_value(option: str, values: set[str]) -> bool:
    """Whether ``option`` is followed by its value: ``-u`` or a cluster ending in one
    (``-iu``) when ``-u`` takes a value; ``--opt=x`` carries its own."""
    if option in values:
        return True
    return not option.startswith("--") and len(option) > 2 and f"-{option[-1]}" in values


def _unwrap(words: list[str]) -> tuple[list[str], Optional[str]]:
    """Drop assignments, reserved words and wrappers (``nice -n 5``, ``flock -n LOCK``)
    in front; return the rest, and the command string of a wrapper's ``-c`` if any."""
    index = 0
    while index < len(words):
        word = words[index]
        if ASSIGNMENT.match(word) or word in _KEYWORDS:
            index += 1
            continue
        name = posixpath.basename(word)
        if name not in _WRAPPERS:
            break
        index += 1
        positional = name in _TAKES_POSITIONAL
        while index < len(words):
            option = words[index]
            if name in _COMMAND_STRING and option in ("-c", "--command"):
                return [], words[index + 1] if index + 1 < len(words) else ""
            if name in _COMMAND_STRING and option.startswith("--command="):
                return [], option.partition("=")[2]
            if option == "--" and not positional:  # the end of its options: the command
                index += 1
                break
            if option.startswith("-") and len(option) > 1:
                index += 2 if _takes_value(option, _WRAPPERS[name]) else 1
            elif positional or _NUMBERISH.fullmatch(option) or option == "-":
                positional, index = False, index + 1
            elif name in ("su", "runuser"):
                index += 1  # the user: what su runs is its -c
            else:
                break
    return words[index:], None


def _shell_string(program: str, args: list[str]) -> Optional[str]:
    """The command string of ``sh -c '…'`` (``bash -lc``, ``sh -ec``...), if any."""
    if not SHELLS.fullmatch(program):
        return None
    reads_string, skip = False, False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-o", "-O", "+o", "+O"):
            skip = True
        elif arg.startswith(("-", "+")) and not arg.startswith("--"):
            reads_string = reads_string or "c" in arg[1:]
        elif not arg.startswith("--"):
            return arg if reads_string else None
    return None


def _argv(segment: list[str], depth: int) -> Optional[list[str]]:
    """The program and arguments a segment runs, reading command strings."""
    words, script = _unwrap(segment)
    if script is None and words:
        script = _shell_string(posixpath.basename(words[0]), words[1:])
    if script is not None and depth < _MAX_DEPTH:
        inner = choose(shell_words(script), depth + 1)
        if inner:
            return inner
    return words or None


def _is_setup(argv: list[str]) -> bool:
    return posixpath.basename(argv[0]) in _SETUP or argv[0].startswith("-")


def choose(words: list[str], depth: int = 0) -> Optional[list[str]]:
    """The argv that names the line: the first one that is not setup (``cd``, ``test``);
    in a line of setup only, the last that is not a guard (``[ -f x ] && echo hi``)."""
    argvs = [argv for argv in (_argv(s, depth) for s in segments(words)) if argv]
    chosen = next((argv for argv in argvs if not _is_setup(argv)), None)
    if chosen is None:
        actions = [a for a in argvs if posixpath.basename(a[0]) not in _GUARDS]
        chosen = actions[-1] if actions else None
    return chosen or (argvs[0] if argvs else None)
