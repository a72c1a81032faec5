"""Secret detectors on the words of a command: flags and per-program conventions.

Pure: no I/O. :func:`scan_command` finds ``--password X``-style flags for any program,
quoted ``"DB_PASSWORD=X"`` words (``docker run -e``) and the per-program forms
(``mysql -pX``, ``sshpass -p X``, ``curl -u user:pass``, ``curl -d "token=X"``,
``sqlplus user/pass@db``, a nested ``sh -c '...'``) in one simple command.
:func:`scan_text` runs every detector (these and :mod:`cronsync.secretpatterns`) over a
text and keeps the strongest of overlapping findings (a nested shell script is scanned
with it too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Callable, Optional

from .secretkinds import (
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
    is_secret_assignment,
    may_name_secret,
)
from .secretpatterns import scan_patterns
from .secretwords import Scan, ShellWord, WordReader, find_program, program_name, word_span

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

_MYSQL = frozenset(
    {
        "mysql",
        "mysqldump",
        "mysqladmin",
        "mysqlimport",
        "mysqlcheck",
        "mysqlshow",
        "mysqlpump",
        "mysqlbinlog",
        "mysql_upgrade",
        "mariadb",
        "mariadb-dump",
        "mariadb-admin",
        "mariadb-import",
        "mariadb-check",
        "mariadb-show",
    }
)
_MONGO = frozenset(
    {
        "mongo",
        "mongosh",
        "mongodump",
        "mongorestore",
        "mongoexport",
        "mongoimport",
        "mongostat",
        "mongotop",
        "mongofiles",
    }
)
_DASH_P_SEPARATE = _MONGO | {"rabbitmqadmin", "mydumper", "myloader"}
_REGISTRY_LOGIN = frozenset({"docker", "podman", "helm", "skopeo", "buildah", "nerdctl"})
_LDAP = frozenset(
    {
        "ldapsearch",
        "ldapmodify",
        "ldapadd",
        "ldapdelete",
        "ldappasswd",
        "ldapwhoami",
        "ldapcompare",
        "ldapmodrdn",
        "ldapexop",
    }
)
_SQLSERVER = frozenset({"sqlcmd", "bcp", "osql"})
_ARCHIVE_ATTACHED = frozenset({"7z", "7za", "7zr", "rar", "unrar"})
_ZIP = frozenset({"zip", "unzip", "zipcloak"})
_SMB = frozenset({"smbclient", "smbget", "smbcacls", "smbtree", "rpcclient", "net"})
_ORACLE = frozenset({"sqlplus", "sqlldr", "exp", "imp", "expdp", "impdp", "dgmgrl"})
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "su", "runuser"})
_OPENSSL_PASS = frozenset({"-pass", "-passin", "-passout", "-passwd"})
_ORACLE_LOGIN = re.compile(r"[A-Za-z][\w$#]*/(?P<pw>[^@/\s][^@\s]*)(?:@\S*)?")

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


def scan_command(scan: Scan, words: Sequence[ShellWord]) -> None:
    """Add to ``scan`` the candidates in one simple command (its flags and per-program forms)."""
    at = find_program(words)
    if at >= len(words):
        return
    program = program_name(words[at].text)
    args = words[at + 1 :]
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
        kind, env, label = _flag_kind(name.lower()), env_name(program, name), text.split("=")[0]
        if equals:
            scan.attached(word, text.index("=") + 1, kind, env, label)
        elif program not in _MYSQL:  # mysql --password X prompts; X is the database
            scan.separate(args, index, kind, env, label)


_QUOTED_ASSIGNMENT = re.compile(r"(?:-D)?(?P<name>[A-Za-z_][\w.-]*)=")


def _quoted_assignments(scan: Scan, program: str, words: Sequence[ShellWord]) -> None:
    """``docker run -e "DB_PASSWORD=X"``, ``ansible -e 'api_token=X'``: a quoted word
    setting a secret (unquoted ones are the raw ``NAME=value`` pattern's; request data
    such as ``curl -F 'token=@file'`` is :func:`_rule_form_data`'s)."""
    data = _DATA_OPTIONS.get(program, {})
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


def _short_option(
    scan: Scan,
    args: Sequence[ShellWord],
    option: str,
    env: str,
    label: str,
    *,
    separate: bool = True,
    attached: bool = True,
) -> None:
    for index, word in enumerate(args):
        if word.text == option and separate:
            scan.separate(args, index, PASSWORD_FLAG, env, label)
        elif word.text.startswith(option) and len(word.text) > len(option) and attached:
            scan.attached(word, len(option), PASSWORD_FLAG, env, label)


def _rule_mysql(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    if program in _MYSQL:  # -pSECRET only: "-p X" prompts and X is the database
        _short_option(scan, args, "-p", "MYSQL_PWD", f"{program} -p", separate=False)


def _rule_dash_p(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    login = program in _REGISTRY_LOGIN and any(word.text == "login" for word in args)
    if program in _DASH_P_SEPARATE or login:
        _short_option(scan, args, "-p", env_name(program, "password"), f"{program} -p")


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


def _rule_simple_short(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    if program == "redis-cli":
        _short_option(scan, args, "-a", "REDISCLI_AUTH", "redis-cli -a")
    elif program in _LDAP:
        _short_option(scan, args, "-w", "LDAP_PASSWORD", f"{program} -w")
    elif program in _ZIP:
        _short_option(scan, args, "-P", "ZIP_PASSWORD", f"{program} -P")
    elif program in _ARCHIVE_ATTACHED:
        _short_option(scan, args, "-p", "ARCHIVE_PASSWORD", f"{program} -p", separate=False)
    elif program in _SQLSERVER:
        _short_option(scan, args, "-P", "SQLCMDPASSWORD", f"{program} -P")


def _user_password(
    scan: Scan, args: Sequence[ShellWord], options: Sequence[str], sep: str, env: str, label: str
) -> None:
    """``-u user:pass`` style options: the part after ``sep`` is the secret."""
    for index, word in enumerate(args):
        value: Optional[ShellWord] = None
        offset = 0
        for option in options:
            if word.text == option and index + 1 < len(args) and not args[index + 1].brk:
                value = args[index + 1]
            elif option.startswith("--") and word.text.startswith(option + "="):
                value, offset = word, len(option) + 1
            elif (
                not option.startswith("--") and word.text.startswith(option) and word.text != option
            ):
                value, offset = word, len(option)
        if value is not None and sep in value.text[offset:]:
            cut = value.text.index(sep, offset) + 1
            scan.attached(value, cut, USER_PASSWORD, env, label)


def _rule_user_password(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    if program == "curl":
        options = ("-u", "--user", "-U", "--proxy-user")
        _user_password(scan, args, options, ":", "CURL_PASSWORD", "curl -u")
    elif program == "lftp":
        _user_password(scan, args, ("-u",), ",", "LFTP_PASSWORD", "lftp -u")
    elif program in _SMB:
        _user_password(scan, args, ("-U", "--user"), "%", "SMB_PASSWORD", f"{program} -U")


# Options whose value is request data: name=value pairs joined by & (split), one
# name=content (whole), or a form field name=value (a @file or <file is no secret).
_DATA_OPTIONS = {
    "curl": {
        "-d": "pairs",
        "--data": "pairs",
        "--data-ascii": "pairs",
        "--data-binary": "pairs",
        "--data-raw": "pairs",
        "--url-query": "pairs",
        "--data-urlencode": "whole",
        "-F": "form",
        "--form": "form",
        "--form-string": "form",
    },
    "wget": {"--post-data": "pairs", "--body-data": "pairs"},
    "wget2": {"--post-data": "pairs", "--body-data": "pairs"},
}
_FORM_PARAMETERS = re.compile(r";(?:type|filename|headers|encoder)=")


def _rule_form_data(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``curl -d "token=X"``, ``--data "a=1&api_key=X"``, ``-F password=X``,
    ``wget --post-data=...``: fields with a secret name."""
    options = _DATA_OPTIONS.get(program)
    if options is None:
        return
    for index, word in enumerate(args):
        text, value, offset, option = word.text, None, 0, ""
        if text in options and index + 1 < len(args) and not args[index + 1].brk:
            value, option = args[index + 1], text
        elif text.startswith("--") and text.partition("=")[0] in options:
            value, option = word, text.partition("=")[0]
            offset = len(option) + 1
        elif text[:2] in options and len(text) > 2 and not text.startswith("--"):
            value, option, offset = word, text[:2], 2
        if value is not None:
            _data_fields(scan, value, offset, options[option], f"{program} {option}")


def _data_fields(scan: Scan, word: ShellWord, offset: int, style: str, label: str) -> None:
    text = word.text
    if style == "pairs" and text.startswith("@", offset) and not label.endswith("-raw"):
        return  # curl -d @file reads the file
    bounds = [(offset, len(text))]
    if style == "pairs":
        bounds, start = [], offset
        for end in [i for i, c in enumerate(text) if c == "&" and i >= offset] + [len(text)]:
            bounds.append((start, end))
            start = end + 1
    for start, end in bounds:
        name, equals, value = text[start:end].partition("=")
        if not equals or not name or not may_name_secret(name):
            continue
        first = start + len(name) + 1
        if style == "form":
            if value.startswith(("@", "<")):
                continue
            cut = _FORM_PARAMETERS.search(value)
            value = value[: cut.start()] if cut else value
        if value and is_secret_assignment(name, value, parameter=True):
            span = word_span(scan.text, word, first, first + len(value))
            scan.add(FORM_FIELD, span, value, env_name(name), f"{label} {name}")


def _rule_openssl(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    if program != "openssl":
        return
    for index, word in enumerate(args[:-1]):
        value = args[index + 1]
        if word.text in _OPENSSL_PASS and value.text.startswith("pass:"):
            scan.attached(value, 5, PASSWORD_FLAG, "OPENSSL_PASSPHRASE", f"openssl {word.text}")
        elif word.text in ("-k", "-K"):
            scan.separate(args, index, PASSWORD_FLAG, "OPENSSL_KEY", f"openssl {word.text}")


def _rule_oracle(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    if program not in _ORACLE and program != "rman":
        return
    for index, word in enumerate(args):
        previous = args[index - 1].text.lower() if index else ""
        first_positional = program != "rman" and not any(
            not arg.text.startswith("-") for arg in args[:index]
        )
        login = first_positional or previous in ("target", "catalog", "auxiliary")
        text = word.text
        if text.lower().startswith("userid="):
            login, text = True, text[7:]
        match = _ORACLE_LOGIN.fullmatch(text) if login else None
        if match:
            offset = len(word.text) - len(text)
            start, end = match.span("pw")
            scan.add(
                USER_PASSWORD,
                word_span(scan.text, word, offset + start, offset + end),
                match["pw"],
                "ORACLE_PASSWORD",
                f"{program} user/password",
            )


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
    _rule_mysql,
    _rule_dash_p,
    _rule_sshpass,
    _rule_simple_short,
    _rule_user_password,
    _rule_form_data,
    _rule_openssl,
    _rule_oracle,
    _rule_nested_shell,
)


# --- the whole text ------------------------------------------------------------------


def scan_text(text: str) -> list[Finding]:
    """Return the findings of every detector in ``text``: in text order, never overlapping."""
    scan = Scan(text)
    scan_patterns(scan)
    for command in WordReader(text).read():
        scan_command(scan, command)
    return _resolve(scan.found)


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
