"""What an inline secret is: its kinds, the :class:`Finding` record and secret-looking names.

Pure: no I/O. The detectors (:mod:`cronsync.secretcommands`, :mod:`cronsync.secretpatterns`)
report :class:`Finding` records; :mod:`cronsync.secretscan` finds and masks them.

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
from dataclasses import dataclass, field

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


def is_reference(value: str) -> bool:
    """A value that points elsewhere ($VAR, $(cmd), `cmd`), is empty or already masked."""
    return not value or value.startswith(("$", "`")) or value == MASK


def is_setting(value: str) -> bool:
    """A value of a secret-named variable that is a switch, not a secret (USE_TOKEN=1)."""
    return value.lower() in _BORING_VALUES


# --- shell words ---------------------------------------------------------------------
