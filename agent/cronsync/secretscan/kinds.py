"""What an inline secret is: its kinds, the :class:`Finding` record and suggested names.

Pure: no I/O. The detectors (:mod:`cronsync.secretscan.commands`,
:mod:`cronsync.secretscan.patterns`) report :class:`Finding` records;
:mod:`cronsync.secretscan.scan` finds and masks them. Which names announce a secret is
:mod:`cronsync.secretscan.names`.

What counts as a secret (each is a ``kind``):

* ``env_assignment`` — ``NAME=value`` where NAME=value sets a secret
  (:func:`~cronsync.secretscan.names.is_secret_assignment`): a name like ``DB_PASSWORD``,
  ``API_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``MYSQL_PWD`` (but not ``PWD``, the working
  directory, nor ``PASSWORD_FILE``, a path); a name ending in KEY (``STRIPE_KEY``) unless
  the value is a path, a file name, a URL or a public key (``SSH_KEY=/root/.ssh/id_rsa``);
  a ``*_WEBHOOK``/``*_WEBHOOK_URL`` set to a URL; a ``*_DSN`` URL with a user part
  (``https://KEY@host/1``). Also ``-Dx.password=`` and ``;Pwd=`` in connection strings.
* ``password_flag`` / ``token_flag`` — ``--password=X``, ``--password X``, ``--token X``,
  ``--api-key X``, ``-storepass X``; per program: ``mysql -pX`` (``-p X`` prompts, so the
  next word is not a secret), ``redis-cli -a X``, ``sshpass -p X``, ``mongodump -p X``,
  ``ldapsearch -w X``, ``zip -P X``, ``7z -pX``, ``sqlcmd -P X``, ``openssl -pass pass:X``,
  ``docker login -p X``.
* ``user_password`` — the password half of ``curl -u user:pass``, ``lftp -u user,pass``,
  ``smbclient -U user%pass`` and Oracle's ``sqlplus user/pass@db``.
* ``url_credentials`` — ``scheme://user:pass@host`` (the password only) and well-known
  token prefixes used as the user (``https://ghp_...@github.com``).
* ``url_parameter`` — a query parameter whose name holds key, token, secret, password,
  auth, signature or sig (:func:`~cronsync.secretscan.names.is_secret_parameter`:
  ``?access_token=X``, ``&password=X``, ``?key=X``, ``?cron_key=X``,
  ``&X-Amz-Signature=X``).
* ``form_field`` — request data with such a name: ``curl -d "token=X"``,
  ``--data "a=1&api_key=X"``, ``-F password=X``, ``wget --post-data``, and JSON
  ``"api_key": "X"``.
* ``webhook_url`` — the secret part of a webhook or bot URL: Slack
  (``hooks.slack.com/services/***``), Discord (``/api/webhooks/ID/***``), Telegram
  (``/bot***/sendMessage``), and any ``/hooks/``, ``/webhook(s)/`` path with a
  token-like segment.
* ``known_token`` — a value shaped like a service's credential, wherever it stands:
  Stripe ``sk_live_``/``rk_live_``/``sk_test_``/``whsec_``, Slack ``xoxb-``/``xapp-``,
  GitHub ``ghp_``/``github_pat_``, GitLab ``glpat-``, Google ``AIza``, SendGrid ``SG.``,
  Mailgun ``key-``, npm, PyPI, Hugging Face, a Telegram bot token, a JWT.
* ``aws_access_key_id`` (``AKIA``/``ASIA`` + 16) and ``aws_secret_access_key`` (the 40
  characters after ``aws_secret_access_key``).
* ``auth_header`` — ``Authorization: Bearer X`` and ``X-Api-Key: X``-style headers.

Not secrets: values that reference something else (``$VAR``, ``$(cat file)``, backticks),
``-p 8080`` for ssh/curl/pg_dump (a port), ``--password-file /path``, ``--no-password``,
a KEY-named path (``SSH_KEY=/root/.ssh/id_rsa``), a public key (``PUBLIC_KEY=...``,
``ssh-ed25519 AAAA...``), a URL without credentials. High-entropy strings without a
known shape are not guessed at: too many false positives (hashes, ids).
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
FORM_FIELD = "form_field"
WEBHOOK_URL = "webhook_url"
KNOWN_TOKEN = "known_token"  # noqa: S105 (a kind, not a secret)

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
    FORM_FIELD,
    WEBHOOK_URL,
    KNOWN_TOKEN,
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


_BORING_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "0", "1"})


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
