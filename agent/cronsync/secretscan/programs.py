"""Per-program secret detectors: the options one program family takes a secret in.

Pure: no I/O. Each ``rule_*`` adds to a :class:`~cronsync.secretscan.words.Scan` the
candidates of one simple command, given its program name and arguments: MySQL's
``-pX``, ``-p X`` of mongo tools and registry logins, ``redis-cli -a``, ``curl -u
user:pass``, request data (``curl -d "token=X"``), ``openssl -pass pass:X``,
``sqlplus user/pass@db``. :mod:`cronsync.secretscan.commands` runs them, in its order, with
the rules that scan a nested command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Optional

from cronsync.secretscan.kinds import FORM_FIELD, PASSWORD_FLAG, USER_PASSWORD, env_name
from cronsync.secretscan.names import is_secret_assignment, may_name_secret
from cronsync.secretscan.words import Scan, ShellWord, word_span

# The MySQL and MariaDB clients (``-pX`` and ``--password=X`` only: a separate word
# after ``-p`` or ``--password`` is not the password).
MYSQL_PROGRAMS = frozenset(
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
_OPENSSL_PASS = frozenset({"-pass", "-passin", "-passout", "-passwd"})
_ORACLE_LOGIN = re.compile(r"[A-Za-z][\w$#]*/(?P<pw>[^@/\s][^@\s]*)(?:@\S*)?")


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


def rule_mysql(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``mysql -pSECRET`` (and the other MySQL/MariaDB clients)."""
    if program in MYSQL_PROGRAMS:  # -pSECRET only: "-p X" prompts and X is the database
        _short_option(scan, args, "-p", "MYSQL_PWD", f"{program} -p", separate=False)


def rule_dash_p(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``mongodump -p X``, ``rabbitmqadmin -p X``, ``docker login -p X``: ``-p``
    attached or separate."""
    login = program in _REGISTRY_LOGIN and any(word.text == "login" for word in args)
    if program in _DASH_P_SEPARATE or login:
        _short_option(scan, args, "-p", env_name(program, "password"), f"{program} -p")


def rule_simple_short(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``redis-cli -a X``, ``ldapsearch -w X``, ``zip -P X``, ``7z -pX``, ``sqlcmd -P X``."""
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


def rule_user_password(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``curl -u user:pass``, ``lftp -u user,pass``, ``smbclient -U user%pass``: the
    password half."""
    if program == "curl":
        options = ("-u", "--user", "-U", "--proxy-user")
        _user_password(scan, args, options, ":", "CURL_PASSWORD", "curl -u")
    elif program == "lftp":
        _user_password(scan, args, ("-u",), ",", "LFTP_PASSWORD", "lftp -u")
    elif program in _SMB:
        _user_password(scan, args, ("-U", "--user"), "%", "SMB_PASSWORD", f"{program} -U")


# Options whose value is request data: name=value pairs joined by & (split), one
# name=content (whole), or a form field name=value (a @file or <file is no secret).
DATA_OPTIONS = {
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


def rule_form_data(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``curl -d "token=X"``, ``--data "a=1&api_key=X"``, ``-F password=X``,
    ``wget --post-data=...``: fields with a secret name."""
    options = DATA_OPTIONS.get(program)
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


def rule_openssl(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``openssl ... -pass pass:X`` (and -passin, -passout, -passwd), ``-k X``."""
    if program != "openssl":
        return
    for index, word in enumerate(args[:-1]):
        value = args[index + 1]
        if word.text in _OPENSSL_PASS and value.text.startswith("pass:"):
            scan.attached(value, 5, PASSWORD_FLAG, "OPENSSL_PASSPHRASE", f"openssl {word.text}")
        elif word.text in ("-k", "-K"):
            scan.separate(args, index, PASSWORD_FLAG, "OPENSSL_KEY", f"openssl {word.text}")


def rule_oracle(scan: Scan, program: str, args: Sequence[ShellWord]) -> None:
    """``sqlplus user/pass@db`` (the first argument, ``userid=``, or rman's ``target``,
    ``catalog``, ``auxiliary``): the password."""
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
