"""Secret detectors on the words of a command: flags and per-program conventions.

Pure: no I/O. :func:`scan_command` finds ``--password X``-style flags for any program,
quoted ``"DB_PASSWORD=X"`` words (``docker run -e``) and the per-program forms
(``mysql -pX``, ``sshpass -p X``, ``curl -u user:pass``, ``curl -d "token=X"``,
``sqlplus user/pass@db``, a nested ``sh -c '...'``) in one simple command; the rules of
single programs are in :mod:`cronsync.secretscan.programs`.
:func:`scan_text` runs every detector (these and :mod:`cronsync.secretscan.patterns`) over a
text and keeps the strongest of overlapping findings (a nested shell script is scanned
with it too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Callable

from cronsync.secretscan.kinds import (
    AUTH_HEADER,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    ENV_ASSIGNMENT,
    FORM_FIELD,
    KNOWN_TOKEN,
    PASSWORD_FLAG,
    TOKEN_FLAG,
    URL_CREDENTIALS,
    URL_PARAMETER,
    USER_PASSWORD,
    WEBHOOK_URL,
    Finding,
    env_name,
)
from cronsync.secretscan.names import is_secret_assignment, may_name_secret
from cronsync.secretscan.patterns import scan_patterns
from cronsync.secretscan.programs import (
    DATA_OPTIONS,
    MYSQL_PROGRAMS,
    rule_dash_p,
    rule_form_data,
    rule_mysql,
    rule_openssl,
    rule_oracle,
    rule_simple_short,
    rule_user_password,
)
from cronsync.secretscan.words import Scan, ShellWord, WordReader, find_program, program_name

# Where two findings overlap, the higher one wins (AWS_SECRET_ACCESS_KEY=... is an AWS
# secret key rather than just a secret-looking variable); among equals, the one that
# starts first, then the longer (SLACK_WEBHOOK=URL moves the whole URL).
_PRIORITY = {
    AWS_SECRET_ACCESS_KEY: 6,
    AWS_ACCESS_KEY_ID: 6,
    URL_CREDENTIALS: 5,
    USER_PASSWORD: 4,
    PASSWORD_FLAG: 4,
    TOKEN_FLAG: 4,
    AUTH_HEADER: 4,
    FORM_FIELD: 4,
    URL_PARAMETER: 3,
    ENV_ASSIGNMENT: 3,
    WEBHOOK_URL: 3,
    KNOWN_TOKEN: 3,
}

_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "su", "runuser"})

_SECRET_FLAGS = (
    "password",
    "passwd",
    "pass",
    "passphrase",
    "token",
    "apikey",
    "api-key",
    "secret",
    "secret-key",
    "access-key",
)
_FLAG_NEGATIONS = ("no-", "ask-", "prompt-", "use-", "with-", "read-", "show-")
_SINGLE_DASH_FLAGS = frozenset(
    {
        "password",
        "passwd",
        "token",
        "apikey",
        "api-key",
        "secret",
        "storepass",
        "keypass",
        "srcstorepass",
        "deststorepass",
        "srckeypass",
        "destkeypass",
    }
)


def scan_command(scan: Scan, words: Sequence[ShellWord], *, rules_only: bool = False) -> None:
    """Add to ``scan`` the candidates in one simple command (its flags and per-program
    forms; with ``rules_only``, the per-program forms only)."""
    at = find_program(words)
    if at >= len(words):
        return
    program = program_name(words[at].text)
    args = words[at + 1 :]
    if not rules_only:
        _quoted_assignments(scan, program, words)
        _generic_flags(scan, program, args)
    for rule in _PROGRAM_RULES:
        rule(scan, program, args)


def _flag_kind(name: str) -> str:
    return TOKEN_FLAG if name.endswith(("token", "key", "secret")) else PASSWORD_FLAG


def _is_secret_flag(name: str) -> bool:
    name = name.lower().replace("_", "-")
    if name.startswith(_FLAG_NEGATIONS):
        return False
    return any(name == word or name.endswith("-" + word) for word in _SECRET_FLAGS)


def _generic_flags(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``--password=X``, ``--token X``, ``-storepass X`` for any program."""
    for index, word in enumerate(args):
        text = word.text
        if text.startswith("--"):
            name, equals, _ = text[2:].partition("=")
            secret = _is_secret_flag(name)
        elif text.startswith("-") and program != "openssl":
            name, equals, _ = text[1:].partition("=")
            secret = name.lower() in _SINGLE_DASH_FLAGS
        else:
            continue
        if not secret:
            continue
        named = program if any(char.isalpha() for char in program) else ""  # not "0" or "*"
        kind, env, label = _flag_kind(name.lower()), env_name(named, name), text.split("=")[0]
        if equals:
            scan.attached(word, text.index("=") + 1, kind, env, label)
        elif program not in MYSQL_PROGRAMS:  # mysql --password X prompts; X is the database
            scan.separate(args, index, kind, env, label)


_QUOTED_ASSIGNMENT = re.compile(r"(?:-D)?(?P<name>[A-Za-z_][\w.-]*)=")


def _quoted_assignments(scan: Scan, program: str, words: Sequence[ShellWord]) -> None:
    """``docker run -e "DB_PASSWORD=X"``, ``ansible -e 'api_token=X'``: a quoted word
    setting a secret (unquoted ones are the raw ``NAME=value`` pattern's; request data
    such as ``curl -F 'token=@file'`` is :func:`~cronsync.secretscan.programs.rule_form_data`'s)."""
    data = DATA_OPTIONS.get(program, {})
    for index, word in enumerate(words):
        if word.brk or scan.text[word.raw_start : word.raw_start + 1] not in ("'", '"', "\\"):
            continue
        if index and words[index - 1].text in data:
            continue
        match = _QUOTED_ASSIGNMENT.match(word.text)
        if match and may_name_secret(match["name"]):
            value = word.text[match.end() :]
            if is_secret_assignment(match["name"], value):
                env = env_name(match["name"])
                scan.attached(word, match.end(), ENV_ASSIGNMENT, env, match["name"])


def _rule_sshpass(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``sshpass -p X cmd...``: its own options, then the command it runs (scanned as one)."""
    if program != "sshpass":
        return
    index = 0
    while index < len(args) and args[index].text.startswith("-") and not args[index].brk:
        if args[index].text in ("-p", "-f", "-d", "-P"):
            if args[index].text == "-p":
                scan.separate(args, index, PASSWORD_FLAG, "SSHPASS", "sshpass -p")
            index += 2
            continue
        if args[index].text.startswith("-p"):
            scan.attached(args[index], 2, PASSWORD_FLAG, "SSHPASS", "sshpass -p")
        index += 1
    scan_command(scan, args[index:])


def _rule_nested_shell(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``sh -c '...'``, ``su - user -c '...'``: scan the inner script too."""
    if program not in _SHELLS:
        return
    for index, word in enumerate(args[:-1]):
        if word.text == "-c" or (word.text.startswith("-") and word.text.endswith("c")):
            inner = args[index + 1]
            for finding in scan_text(inner.text):
                start = inner.positions[finding.start]
                end = inner.positions[finding.end - 1] + 1
                scan.found.append(
                    Finding(
                        finding.kind, start, end, finding.env_name, finding.label, finding.value
                    )
                )


_Rule = Callable[[Scan, str, Sequence[ShellWord]], None]
_PROGRAM_RULES: tuple[_Rule, ...] = (
    rule_mysql,
    rule_dash_p,
    _rule_sshpass,
    rule_simple_short,
    rule_user_password,
    rule_form_data,
    rule_openssl,
    rule_oracle,
    _rule_nested_shell,
)


# --- the whole text ------------------------------------------------------------------


def scan_text(text: str, starts: int = 1, command_at: int = 0) -> list[Finding]:
    """Return the findings of every detector in ``text``: in text order, never overlapping.

    Args:
        text: shell text (a command, a value, a whole crontab line).
        starts: the first simple command is also read with its program at each of its
            first ``starts`` words (1: only where the shell finds it), for text whose
            command does not start at its first word (a crontab line, read however it
            is read).
        command_at: where the command most likely starts (an index in ``text``): that
            reading is tried first, so where two readings find the same secret, its
            names (the suggested variable) win.
    """
    return TextScan(text, starts).findings(command_at)


class TextScan:
    """One text scanned once for what every reading of it shares (the patterns, the
    words, every simple command after the first); :meth:`findings` adds a reading's
    first command, each of its pieces (the command read from one of its words, with
    every detector or the per-program rules only) scanned once for all readings.
    ``TextScan(text, starts).findings(at)`` is ``scan_text(text, starts, at)``, for any
    number of ``at`` (the import reads a line at its command and at 0).
    """

    def __init__(self, text: str, starts: int = 1) -> None:
        """Scan ``text`` (see :func:`scan_text` for ``starts``); never raises."""
        self.text, self.starts = text, starts
        patterns = Scan(text)
        scan_patterns(patterns)
        self._patterns = patterns.found
        commands = WordReader(text).read()
        self._first = commands[0] if commands else []
        rest = Scan(text)
        for command in commands[1:]:
            scan_command(rest, command)
        self._rest = rest.found
        self._pieces: dict[tuple[int, bool], list[Finding]] = {}

    def findings(self, command_at: int = 0) -> list[Finding]:
        """Return the findings of the reading whose command most likely starts at
        ``command_at`` (as :func:`scan_text`)."""
        found = list(self._patterns)
        command = self._first
        if command:
            likely = next((i for i, word in enumerate(command) if word.raw_start >= command_at), 0)
            found += self._piece(likely, rules_only=False)
            if likely and any(_may_be_flag(self.text, word) for word in command[: likely + 1]):
                found += self._piece(0, rules_only=False)  # a flag before: see every one
            for start in _other_programs(command, self.starts, likely):
                found += self._piece(start, rules_only=True)
        return _resolve(found + self._rest)

    def _piece(self, start: int, *, rules_only: bool) -> list[Finding]:
        """The candidates in the first command read from its word ``start`` on."""
        key = (start, rules_only)
        if key not in self._pieces:
            scan = Scan(self.text)
            scan_command(scan, self._first[start:], rules_only=rules_only)
            self._pieces[key] = scan.found
        return self._pieces[key]


def _may_be_flag(text: str, word: ShellWord) -> bool:
    """Whether a word could be a flag or an assignment (a dash, ``=``, or quoted)."""
    return word.text[:1] == "-" or "=" in word.text or text[word.raw_start] in "'\"\\"


def _other_programs(command: Sequence[ShellWord], starts: int, likely: int) -> list[int]:
    """The other words among the first ``starts`` of a command that could name a
    program, up to a redirection: a program has a letter and does not start with ``-``,
    ``@`` or ``#`` (a time field, an option, a macro or a ``#`` is no program any rule
    knows). Only the per-program rules need reading from there: the generic flags are
    the likely reading's (and the first word's, when a flag comes before it)."""
    found = []
    for start in range(min(starts, len(command))):
        word = command[start]
        if word.brk:
            break
        if start != likely and word.text[:1] not in ("-", "@", "#") and _has_letter(word.text):
            found.append(start)
    return found


def _has_letter(text: str) -> bool:
    return any(char.isalpha() for char in text)


def _resolve(candidates: list[Finding]) -> list[Finding]:
    """Keep the strongest of overlapping candidates; return them in text order."""
    ranked = sorted(candidates, key=lambda f: (-_PRIORITY[f.kind], f.start, f.start - f.end))
    kept: list[Finding] = []
    for finding in ranked:
        if finding.end > finding.start and not any(_overlap(finding, k) for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


def _overlap(one: Finding, other: Finding) -> bool:
    return one.start < other.end and other.start < one.end
