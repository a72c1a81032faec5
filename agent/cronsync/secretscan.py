"""Find secrets written inline in a cron command or environment value, and mask them.

Pure: no I/O. ``cronsync inventory`` masks what it prints with :func:`mask_secrets`;
``cronsync import`` uses :func:`find_secrets` to move each value out of the repository
(every :class:`Finding` carries the value, a span to cut and a suggested variable name).

What counts as a secret (each is a ``kind``):

* ``env_assignment`` — ``NAME=value`` where NAME looks secret (:func:`is_secret_name`:
  ``DB_PASSWORD``, ``API_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``MYSQL_PWD`` — but not
  ``PWD``, the working directory, nor ``PASSWORD_FILE``, a path); also ``-Dx.password=``
  and ``;Pwd=`` in connection strings.
* ``password_flag`` / ``token_flag`` — ``--password=X``, ``--password X``, ``--token X``,
  ``--api-key X``, ``-storepass X``; per program: ``mysql -pX`` (``-p X`` prompts, so the
  next word is not a secret), ``redis-cli -a X``, ``sshpass -p X``, ``mongodump -p X``,
  ``ldapsearch -w X``, ``zip -P X``, ``7z -pX``, ``sqlcmd -P X``, ``openssl -pass pass:X``,
  ``docker login -p X``.
* ``user_password`` — the password half of ``curl -u user:pass``, ``lftp -u user,pass``,
  ``smbclient -U user%pass`` and Oracle's ``sqlplus user/pass@db``.
* ``url_credentials`` — ``scheme://user:pass@host`` (the password only) and well-known
  token prefixes used as the user (``https://ghp_...@github.com``).
* ``url_parameter`` — ``?access_token=X``, ``&password=X``, ``?key=X``.
* ``aws_access_key_id`` (``AKIA``/``ASIA`` + 16) and ``aws_secret_access_key`` (the 40
  characters after ``aws_secret_access_key``).
* ``auth_header`` — ``Authorization: Bearer X`` and ``X-Api-Key: X``-style headers.

Not secrets: values that reference something else (``$VAR``, ``$(cat file)``, backticks),
``-p 8080`` for ssh/curl/pg_dump (a port), ``--password-file /path``, ``--no-password``.
High-entropy strings are not guessed at: too many false positives (hashes, ids).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

MASK = "***"

ENV_ASSIGNMENT = "env_assignment"
PASSWORD_FLAG = "password_flag"  # noqa: S105 (a kind, not a secret)
TOKEN_FLAG = "token_flag"  # noqa: S105 (a kind, not a secret)
USER_PASSWORD = "user_password"  # noqa: S105 (a kind, not a secret)
URL_CREDENTIALS = "url_credentials"
URL_PARAMETER = "url_parameter"
AWS_ACCESS_KEY_ID = "aws_access_key_id"
AWS_SECRET_ACCESS_KEY = "aws_secret_access_key"  # noqa: S105 (a kind, not a secret)
AUTH_HEADER = "auth_header"

KINDS = (
    ENV_ASSIGNMENT,
    PASSWORD_FLAG,
    TOKEN_FLAG,
    USER_PASSWORD,
    URL_CREDENTIALS,
    URL_PARAMETER,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AUTH_HEADER,
)

# Where two findings overlap, the higher one wins (AWS_SECRET_ACCESS_KEY=... is an AWS
# secret key rather than just a secret-looking variable).
_PRIORITY = {
    AWS_SECRET_ACCESS_KEY: 6,
    AWS_ACCESS_KEY_ID: 6,
    URL_CREDENTIALS: 5,
    USER_PASSWORD: 4,
    PASSWORD_FLAG: 4,
    TOKEN_FLAG: 4,
    AUTH_HEADER: 4,
    URL_PARAMETER: 3,
    ENV_ASSIGNMENT: 3,
}


@dataclass(frozen=True)
class Finding:
    """One inline secret.

    Attributes:
        kind: one of :data:`KINDS`.
        start: index of the value's first character in the scanned text.
        end: index just after the value (``text[start:end]`` is what to mask; quotes
            around a value are left outside the span).
        env_name: a suggested environment variable to carry the value instead
            (``MYSQL_PWD``, ``PGPASSWORD``, ``DB_PASSWORD``...); callers make it unique.
        label: where it was found, for a report (``--password``, ``DB_PASSWORD``,
            ``curl -u``); never the value.
        value: the secret as the program receives it (shell quoting removed). Not shown
            by ``repr``.
    """

    kind: str
    start: int
    end: int
    env_name: str
    label: str
    value: str = field(repr=False)


# --- names --------------------------------------------------------------------------

_SECRET_WORDS = frozenset(
    {
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "PW",
        "PASSPHRASE",
        "SECRET",
        "SECRETS",
        "TOKEN",
        "TOKENS",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "AUTH",
    }
)
_KEY_QUALIFIERS = frozenset(
    {
        "API",
        "ACCESS",
        "PRIVATE",
        "SECRET",
        "AUTH",
        "SIGNING",
        "ENCRYPTION",
        "MASTER",
        "SESSION",
        "CLIENT",
        "APP",
        "WEBHOOK",
        "LICENSE",
        "ADMIN",
        "SHARED",
    }
)
# A last word that makes the variable about a secret rather than the secret itself.
_NOT_A_VALUE = frozenset(
    {
        "FILE",
        "FILES",
        "FILENAME",
        "PATH",
        "DIR",
        "ID",
        "NAME",
        "URL",
        "URI",
        "ENDPOINT",
        "HOST",
        "PORT",
        "USER",
        "USERNAME",
        "TYPE",
        "LENGTH",
        "TTL",
        "EXPIRY",
        "EXPIRES",
        "TIMEOUT",
        "HEADER",
        "PREFIX",
        "ARN",
        "REF",
        "REGION",
        "ENABLED",
        "MODE",
        "KIND",
        "FORMAT",
        "CMD",
        "COMMAND",
        "HELPER",
        "VERSION",
        "COUNT",
        "SIZE",
        "POLICY",
        "DAYS",
        "ROTATION",
        "LOCATION",
        "STORE",
        "PROVIDER",
        "METHOD",
        "FIELD",
    }
)
_WORDS_ENDING_IN_PASS = frozenset({"BYPASS", "COMPASS", "SURPASS", "ENCOMPASS", "TRESPASS"})
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})
_BORING_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "0", "1"})


def is_secret_name(name: str) -> bool:
    """Tell whether a variable, option or parameter name announces a secret value.

    Args:
        name: e.g. ``DB_PASSWORD``, ``spring.datasource.password``, ``api-key``.
    Returns:
        True for names with a word like PASSWORD, PASSWD, PASS, PWD, SECRET, TOKEN,
        PASSPHRASE, CREDENTIALS, AUTH or API/ACCESS/PRIVATE/SECRET... KEY, unless the
        last word makes it a reference (``_FILE``, ``_PATH``, ``_ID``, ``_URL``...).
        ``PWD`` and ``OLDPWD`` (directories) are not secrets.
    """
    upper = name.upper()
    words = [word for word in re.split(r"[^A-Z0-9]+", upper) if word]
    if not words or upper in _NOT_SECRET_NAMES or words[-1] in _NOT_A_VALUE:
        return False
    for index, word in enumerate(words):
        if word in _SECRET_WORDS or "PASSWORD" in word or "PASSWD" in word:
            return True
        if word.endswith(("TOKEN", "SECRET", "APIKEY")) or word.startswith("SECRET"):
            return True
        if word.endswith("PASS") and word not in _WORDS_ENDING_IN_PASS:
            return True
        if word == "KEY" and index > 0 and words[index - 1] in _KEY_QUALIFIERS:
            return True
    return False


def env_name(*parts: str) -> str:
    """Join words into an environment variable name (``mongo``, ``password`` ->
    ``MONGO_PASSWORD``)."""
    joined = "_".join(re.sub(r"[^A-Za-z0-9]+", "_", part).strip("_") for part in parts if part)
    name = re.sub(r"_+", "_", joined).upper() or "SECRET"
    return f"X_{name}" if name[0].isdigit() else name


def _is_reference(value: str) -> bool:
    """A value that points elsewhere ($VAR, $(cmd), `cmd`), is empty or already masked."""
    return not value or value.startswith(("$", "`")) or value == MASK


def _is_setting(value: str) -> bool:
    """A value of a secret-named variable that is a switch, not a secret (USE_TOKEN=1)."""
    return value.lower() in _BORING_VALUES


# --- shell words ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    """A shell word: its text with quoting removed, and where each character came from."""

    text: str
    positions: tuple[int, ...]
    raw_start: int
    raw_end: int
    brk: bool = False  # a redirection operator: not an argument


_BREAK = _Word("", (), 0, 0, brk=True)
_SEPARATORS = ";&|()`\n"


class _WordReader:
    """Split shell text into simple commands of words (quotes and escapes honoured)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.commands: list[list[_Word]] = [[]]
        self.chars: list[str] = []
        self.positions: list[int] = []
        self.start: Optional[int] = None

    def read(self) -> list[list[_Word]]:
        """Return the simple commands (empty ones dropped)."""
        index = 0
        while index < len(self.text):
            index = self._step(index)
        self._end_word(len(self.text))
        return [command for command in self.commands if command]

    def _step(self, index: int) -> int:
        char = self.text[index]
        if char in " \t\r" or char in _SEPARATORS or char in "<>":
            self._end_word(index)
            if char in _SEPARATORS:
                self.commands.append([])
            elif char in "<>":
                self.commands[-1].append(_BREAK)
            return index + 1
        if char == "$" and self.text.startswith("$(", index):
            self._end_word(index)
            self.commands.append([])
            return index + 2
        if self.start is None:
            self.start = index
        if char == "\\":
            return self._add_span(index + 1, min(index + 2, len(self.text)))
        if char == "'":
            close = self.text.find("'", index + 1)
            close = len(self.text) if close < 0 else close
            self._add_span(index + 1, close)
            return close + 1
        if char == '"':
            return self._double_quoted(index + 1)
        self._add(char, index)
        return index + 1

    def _double_quoted(self, index: int) -> int:
        while index < len(self.text) and self.text[index] != '"':
            if self.text[index] == "\\" and self.text[index + 1 : index + 2] in (
                '"',
                "\\",
                "$",
                "`",
            ):
                index += 1
            self._add(self.text[index], index)
            index += 1
        return index + 1

    def _add(self, char: str, index: int) -> None:
        self.chars.append(char)
        self.positions.append(index)

    def _add_span(self, start: int, end: int) -> int:
        for index in range(start, end):
            self._add(self.text[index], index)
        return end

    def _end_word(self, index: int) -> None:
        if self.start is not None:
            word = _Word("".join(self.chars), tuple(self.positions), self.start, index)
            self.commands[-1].append(word)
        self.chars, self.positions, self.start = [], [], None


def _span(text: str, word: _Word, first: int, stop: Optional[int] = None) -> tuple[int, int]:
    """Return the raw span of ``word.text[first:stop]``: exact when written plainly,
    else from after the prefix to the word's end (quotes included, still valid shell)."""
    stop = len(word.text) if stop is None else stop
    start, end = word.positions[first], word.positions[stop - 1] + 1
    if text[start:end] == word.text[first:stop]:
        return start, end
    if stop < len(word.text):
        return start, end
    return (word.positions[first - 1] + 1 if first else word.raw_start), word.raw_end


# --- rules on words ------------------------------------------------------------------

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
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")

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
# Wrappers that run another program: how many option words take a value.
_WRAPPER_VALUE_OPTIONS = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "env": frozenset({"-u", "-C", "-S"}),
    "nice": frozenset({"-n"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "timeout": frozenset({"-s", "-k"}),
    "flock": frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}),
    "nohup": frozenset(),
    "exec": frozenset({"-a"}),
    "time": frozenset({"-f", "-o"}),
    "chronic": frozenset(),
    "command": frozenset(),
    "setsid": frozenset(),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
}
_WRAPPER_POSITIONALS = {"timeout": 1, "flock": 1}


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _program(words: Sequence[_Word]) -> int:
    """Index of the program word of a simple command (after NAME=value words and
    wrappers such as sudo, env, nice, timeout, flock); ``len(words)`` if none."""
    index = 0
    while index < len(words) and not words[index].brk:
        name = _basename(words[index].text)
        if _ASSIGNMENT.match(words[index].text):
            index += 1
        elif name in _WRAPPER_VALUE_OPTIONS:
            index = _skip_wrapper(words, index + 1, name)
        else:
            return index
    return len(words)


def _skip_wrapper(words: Sequence[_Word], index: int, name: str) -> int:
    takes_value = _WRAPPER_VALUE_OPTIONS[name]
    positionals = _WRAPPER_POSITIONALS.get(name, 0)
    while index < len(words) and not words[index].brk:
        text = words[index].text
        if text == "--":
            return index + 1
        if text.startswith("-") and len(text) > 1:
            index += 2 if text in takes_value else 1
        elif name == "env" and _ASSIGNMENT.match(text):
            index += 1
        elif positionals:
            positionals -= 1
            index += 1
        else:
            break
    return index


@dataclass
class _Scan:
    """Collects candidate findings over one text."""

    text: str
    found: list[Finding] = field(default_factory=list)

    def add(self, kind: str, span: tuple[int, int], value: str, env: str, label: str) -> None:
        if not _is_reference(value):
            self.found.append(Finding(kind, span[0], span[1], env, label, value))

    def attached(self, word: _Word, first: int, kind: str, env: str, label: str) -> None:
        """The value is ``word.text[first:]`` (``-pSECRET``, ``--password=SECRET``)."""
        if first < len(word.text):
            self.add(kind, _span(self.text, word, first), word.text[first:], env, label)

    def separate(self, args: Sequence[_Word], index: int, kind: str, env: str, label: str) -> None:
        """The value is the next argument, unless it is missing or another option."""
        if index + 1 < len(args):
            value = args[index + 1]
            if not value.brk and value.text and not value.text.startswith("-"):
                self.attached(value, 0, kind, env, label)


def _scan_command(scan: _Scan, words: Sequence[_Word]) -> None:
    at = _program(words)
    if at >= len(words):
        return
    program = _basename(words[at].text)
    args = words[at + 1 :]
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


def _generic_flags(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
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


def _short_option(
    scan: _Scan,
    args: Sequence[_Word],
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


def _rule_mysql(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
    if program in _MYSQL:  # -pSECRET only: "-p X" prompts and X is the database
        _short_option(scan, args, "-p", "MYSQL_PWD", f"{program} -p", separate=False)


def _rule_dash_p(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
    login = program in _REGISTRY_LOGIN and any(word.text == "login" for word in args)
    if program in _DASH_P_SEPARATE or login:
        _short_option(scan, args, "-p", env_name(program, "password"), f"{program} -p")


def _rule_sshpass(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
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
    _scan_command(scan, args[index:])


def _rule_simple_short(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
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
    scan: _Scan, args: Sequence[_Word], options: Sequence[str], sep: str, env: str, label: str
) -> None:
    """``-u user:pass`` style options: the part after ``sep`` is the secret."""
    for index, word in enumerate(args):
        value: Optional[_Word] = None
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


def _rule_user_password(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
    if program == "curl":
        options = ("-u", "--user", "-U", "--proxy-user")
        _user_password(scan, args, options, ":", "CURL_PASSWORD", "curl -u")
    elif program == "lftp":
        _user_password(scan, args, ("-u",), ",", "LFTP_PASSWORD", "lftp -u")
    elif program in _SMB:
        _user_password(scan, args, ("-U", "--user"), "%", "SMB_PASSWORD", f"{program} -U")


def _rule_openssl(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
    if program != "openssl":
        return
    for index, word in enumerate(args[:-1]):
        value = args[index + 1]
        if word.text in _OPENSSL_PASS and value.text.startswith("pass:"):
            scan.attached(value, 5, PASSWORD_FLAG, "OPENSSL_PASSPHRASE", f"openssl {word.text}")
        elif word.text in ("-k", "-K"):
            scan.separate(args, index, PASSWORD_FLAG, "OPENSSL_KEY", f"openssl {word.text}")


def _rule_oracle(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
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
                _span(scan.text, word, offset + start, offset + end),
                match["pw"],
                "ORACLE_PASSWORD",
                f"{program} user/password",
            )


def _rule_nested_shell(scan: _Scan, program: str, args: Sequence[_Word]) -> None:
    """``sh -c '...'``, ``su - user -c '...'``: scan the inner script too."""
    if program not in _SHELLS:
        return
    for index, word in enumerate(args[:-1]):
        if word.text == "-c" or (word.text.startswith("-") and word.text.endswith("c")):
            inner = args[index + 1]
            for finding in _scan_text(inner.text):
                start = inner.positions[finding.start]
                end = inner.positions[finding.end - 1] + 1
                scan.found.append(
                    Finding(
                        finding.kind, start, end, finding.env_name, finding.label, finding.value
                    )
                )


_Rule = Callable[[_Scan, str, Sequence[_Word]], None]
_PROGRAM_RULES: tuple[_Rule, ...] = (
    _rule_mysql,
    _rule_dash_p,
    _rule_sshpass,
    _rule_simple_short,
    _rule_user_password,
    _rule_openssl,
    _rule_oracle,
    _rule_nested_shell,
)


# --- rules on the raw text -----------------------------------------------------------

_URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^\s/?#@'\"]*)@(?P<host>[A-Za-z0-9.-]*)"
)
_TOKEN_USER = re.compile(
    r"(?:ghp_|gho_|ghu_|ghs_|github_pat_|glpat-|xox[abpr]-)\S+|[A-Za-z0-9_-]{32,}"
)
_URL_ENV = {
    "postgres": "PGPASSWORD",
    "postgresql": "PGPASSWORD",
    "mysql": "MYSQL_PWD",
    "redis": "REDISCLI_AUTH",
    "rediss": "REDISCLI_AUTH",
    "mongodb": "MONGO_PASSWORD",
    "mongodb+srv": "MONGO_PASSWORD",
}
_AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_AWS_SECRET = re.compile(
    r"(?i)aws_secret_access_key['\"]?\s*[=:\s]\s*['\"]?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_AUTH_HEADER = re.compile(
    r"(?i)\b(?P<name>(?:proxy-)?authorization)\s*:\s*"
    r"(?:(?:bearer|basic|token|digest|apikey|api-key|sso-key|key)\s+)?(?P<value>[^\s'\"]+)"
    r"|\b(?P<header>x-api-key|x-auth-token|x-access-token|private-token|x-vault-token|x-apikey"
    r"|api-key|apikey)\s*:\s*(?P<hvalue>[^\s'\"]+)"
)
_KEY_VALUE = re.compile(r"(?:^|(?<=[\s;&|(`,?]))(?P<define>-D)?(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)=")
_QUERY_KEYS = frozenset({"key", "apikey", "api_key", "sig", "signature", "auth"})
_LIST_KEYS = frozenset({"pwd", "pw"})


def _url_rule(scan: _Scan) -> None:
    for match in _URL.finditer(scan.text):
        user, colon, password = match["userinfo"].partition(":")
        scheme = match["scheme"].lower()
        host = match["host"].split(".")[0]
        env = _URL_ENV.get(scheme) or env_name(host or "url", "password")
        if colon and password:
            start = match.start("userinfo") + len(user) + 1
            scan.add(URL_CREDENTIALS, (start, match.end("userinfo")), password, env, "URL password")
        elif not colon and _TOKEN_USER.fullmatch(user):
            token_env = env_name(host or "url", "token")
            scan.add(URL_CREDENTIALS, match.span("userinfo"), user, token_env, "URL token")


def _aws_rule(scan: _Scan) -> None:
    for match in _AWS_KEY_ID.finditer(scan.text):
        scan.add(AWS_ACCESS_KEY_ID, match.span(), match[0], "AWS_ACCESS_KEY_ID", "AWS key id")
    for match in _AWS_SECRET.finditer(scan.text):
        scan.add(
            AWS_SECRET_ACCESS_KEY,
            match.span("value"),
            match["value"],
            "AWS_SECRET_ACCESS_KEY",
            "aws_secret_access_key",
        )


def _header_rule(scan: _Scan) -> None:
    for match in _AUTH_HEADER.finditer(scan.text):
        group = "value" if match["value"] is not None else "hvalue"
        name = match["name"] or match["header"]
        env = "API_TOKEN" if match["name"] else env_name(match["header"])
        scan.add(AUTH_HEADER, match.span(group), match[group], env, f"{name} header")


def _key_value_rule(scan: _Scan) -> None:
    for match in _KEY_VALUE.finditer(scan.text):
        key = match["key"]
        before = scan.text[match.start() - 1] if match.start() else ""
        query = before in ("?", "&")
        listed = before in (",", ";")
        lowered = key.lower()
        secret = (
            is_secret_name(key)
            or (listed and lowered in _LIST_KEYS)
            or (query and lowered in _QUERY_KEYS)
        )
        if not secret:
            continue
        stops = "&#,;'\"" if (query or listed or match["define"]) else ""
        start, end, value = _read_value(scan.text, match.end(), stops)
        if _is_setting(value):
            continue
        kind = URL_PARAMETER if query else ENV_ASSIGNMENT
        scan.add(kind, (start, end), value, env_name(key), key)


def _read_value(text: str, index: int, extra_stops: str) -> tuple[int, int, str]:
    """Read a shell-ish value at ``index``; return its span and unquoted text."""
    if index < len(text) and text[index] in "'\"":
        quote = text[index]
        close = index + 1
        while close < len(text) and text[close] != quote:
            close += 2 if (quote == '"' and text[close] == "\\") else 1
        close = min(close, len(text))
        inner = text[index + 1 : close]
        return index + 1, close, inner.replace('\\"', '"') if quote == '"' else inner
    end = index
    stops = " \t\r\n;|&<>()`" + extra_stops
    while end < len(text) and text[end] not in stops:
        end += 2 if text[end] == "\\" else 1
    end = min(end, len(text))
    words = _WordReader(text[index:end]).read()
    value = words[0][0].text if words and words[0] else ""
    return index, end, value


_TEXT_RULES: tuple[Callable[[_Scan], None], ...] = (
    _url_rule,
    _aws_rule,
    _header_rule,
    _key_value_rule,
)


# --- public API ----------------------------------------------------------------------


def _scan_text(text: str) -> list[Finding]:
    scan = _Scan(text)
    for rule in _TEXT_RULES:
        rule(scan)
    for command in _WordReader(text).read():
        _scan_command(scan, command)
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


def find_secrets(text: str) -> list[Finding]:
    """Find every inline secret in a command line or value.

    Args:
        text: a cron command as written (``%`` and all), a shell line, or a value.
    Returns:
        the findings in text order, never overlapping. Each span covers the value only
        (``--password=***``, ``https://user:***@host``, ``'***'`` keeps its quotes).
    """
    return _scan_text(text)


def mask_secrets(text: str) -> str:
    """Return ``text`` with the value of every finding replaced by ``***``.

    Args:
        text: as for :func:`find_secrets`.
    Returns:
        the masked text; ``text`` itself when nothing is found.
    """
    return mask_findings(text, find_secrets(text))


def mask_findings(text: str, findings: Sequence[Finding]) -> str:
    """Replace the spans of ``findings`` (from :func:`find_secrets` on ``text``) by ``***``."""
    pieces: list[str] = []
    done = 0
    for finding in sorted(findings, key=lambda f: f.start):
        pieces += [text[done : finding.start], MASK]
        done = finding.end
    pieces.append(text[done:])
    return "".join(pieces)


def mask_env_value(name: str, value: str) -> str:
    """Mask an environment value for display.

    Args:
        name: the variable's name. value: its value as the job sees it.
    Returns:
        ``***`` when the name looks secret (and the value is not empty or a
        reference), else the value with any inline secret masked (a password in a URL).
    """
    if is_secret_name(name) and not _is_reference(value) and not _is_setting(value):
        return MASK
    return mask_secrets(value)
