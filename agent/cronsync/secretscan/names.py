"""Secret-looking names: does ``NAME=value`` set a secret?

Pure: no I/O. Which variable, option, query parameter and form field names announce a
secret (:func:`is_secret_name`, :func:`is_secret_parameter`), and whether a value given
to such a name is one (:func:`is_secret_assignment`; a KEY-named path or URL is not,
:func:`names_a_place`). The detectors (:mod:`cronsync.secretscan.commands`,
:mod:`cronsync.secretscan.patterns`) and :mod:`cronsync.secretscan.scan` ask it; the kinds and the
:class:`~cronsync.secretscan.kinds.Finding` record are in :mod:`cronsync.secretscan.kinds`.
"""

from __future__ import annotations

import functools
import re

from cronsync.secretscan.kinds import is_reference, is_setting

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
# A word before KEY that makes it an index, a lookup or a public key, not a secret.
_NOT_SECRET_KEYS = frozenset(
    {
        "PUBLIC",
        "PUB",
        "PUBLISHABLE",
        "SITE",
        "HOST",
        "SORT",
        "CACHE",
        "PRIMARY",
        "FOREIGN",
        "UNIQUE",
        "PARTITION",
        "RANGE",
        "ROUTING",
        "SHARD",
        "INDEX",
        "LOOKUP",
        "GROUP",
        "MAP",
        "OBJECT",
        "DEDUP",
        "DEDUPLICATION",
        "IDEMPOTENCY",
        "HOT",
        "SHORTCUT",
        "TRANSLATION",
        "I18N",
    }
)
# In a query or a form, these words name a secret too (?sig=, &X-Amz-Signature=).
_PARAMETER_WORDS = frozenset({"SIG", "SIGNATURE", "HMAC"})
_WEBHOOK_WORDS = frozenset({"WEBHOOK", "WEBHOOKS", "HOOK"})
_WEBHOOK_ENDS = _WEBHOOK_WORDS | {"URL", "URI", "ENDPOINT"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s@]+@")
_PUBLIC_KEY = re.compile(
    r"(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp\d+|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)"
    r"@openssh\.com)\s+AAAA"
    r"|-----BEGIN (?:RSA |EC |PGP )?PUBLIC KEY(?: BLOCK)?-----|-----BEGIN CERTIFICATE-----"
)
_PATH_CHARS = re.compile(r"[\w.@~:/-]+")
_PATH_START = ("/", "~", "./", "../", "file:")
_EXTENSION = re.compile(r"[^.]\.[A-Za-z][A-Za-z0-9]{0,7}$")
_KEY_FILE = re.compile(
    r"id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?(?:\.pub)?|authorized_keys|known_hosts"
)


def name_words(name: str) -> list[str]:
    """Return the words of a name, upper case (``spring.datasource.password``,
    ``cron_key``, ``apiKey`` -> ``['API', 'KEY']``)."""
    return [word for word in re.split(r"[^A-Z0-9]+", _CAMEL.sub("_", name).upper()) if word]


def _is_key_word(word: str) -> bool:
    """KEY, or KEY glued to a qualifier (APIKEY, ACCESSKEY, PRIVATEKEY)."""
    return word == "KEY" or (word.endswith("KEY") and word[:-3] in _KEY_QUALIFIERS)


def _names_a_key(words: list[str], anywhere: bool = False) -> bool:
    """The name ends in KEY (``STRIPE_KEY``, ``APIKEY``; with ``anywhere`` any of its
    words, as in ``?key_v2=``), not after a word like PUBLIC or SORT."""
    positions = range(len(words)) if anywhere else [len(words) - 1]
    return any(
        _is_key_word(words[index]) and (index == 0 or words[index - 1] not in _NOT_SECRET_KEYS)
        for index in positions
    )


def _has_secret_word(words: list[str]) -> bool:
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


def is_secret_name(name: str) -> bool:
    """Tell whether a variable, option or parameter name announces a secret value.

    Args:
        name: e.g. ``DB_PASSWORD``, ``spring.datasource.password``, ``api-key``.
    Returns:
        True for names with a word like PASSWORD, PASSWD, PASS, PWD, SECRET, TOKEN,
        PASSPHRASE, CREDENTIALS, AUTH or API/ACCESS/PRIVATE/SECRET... KEY, and names
        ending in KEY (``STRIPE_KEY``; not ``PUBLIC_KEY``, ``SORT_KEY``), unless the
        last word makes it a reference (``_FILE``, ``_PATH``, ``_ID``, ``_URL``...).
        ``PWD`` and ``OLDPWD`` (directories) are not secrets. Whether the value is one
        is :func:`is_secret_assignment`.
    """
    words = name_words(name)
    if not words or name.upper() in _NOT_SECRET_NAMES or words[-1] in _NOT_A_VALUE:
        return False
    return _names_a_key(words) or _has_secret_word(words)


def is_secret_parameter(name: str) -> bool:
    """Tell whether a query parameter or form field name announces a secret value.

    Args:
        name: e.g. ``access_token``, ``cron_key``, ``apiKey``, ``X-Amz-Signature``.
    Returns:
        True for a word like KEY, TOKEN, SECRET, PASSWORD, AUTH, SIGNATURE or SIG
        anywhere in the name (not ``keyword``, ``author``, ``design``), unless the last
        word makes it a reference (``token_type``, ``key_id``) or KEY follows a word
        like PUBLIC or SORT.
    """
    words = name_words(name)
    if not words or words[-1] in _NOT_A_VALUE:
        return False
    if any(word in _PARAMETER_WORDS for word in words):
        return True
    return _names_a_key(words, anywhere=True) or _has_secret_word(words)


@functools.lru_cache(maxsize=4096)
def may_name_secret(name: str) -> bool:
    """Tell whether ``name=value`` could set a secret for some value (a quick filter
    before reading the value for :func:`is_secret_assignment`).

    Args:
        name: a variable, option, query parameter or form field name.
    Returns:
        False only when no value of ``name`` is a secret.
    """
    words = name_words(name)
    if not words:
        return False
    webhook = any(word in _WEBHOOK_WORDS or word.endswith("WEBHOOK") for word in words)
    return words[-1] == "DSN" or webhook or is_secret_parameter(name)


def names_a_place(value: str) -> bool:
    """Tell whether a value names where a key is rather than being one.

    Args:
        value: the value of a KEY-named variable, as the program gets it.
    Returns:
        True for a path (``/root/.ssh/id_rsa``, ``~/.ssh/id_ed25519``, ``./k.pem``,
        ``keys/deploy.pem``), a file name (``server.key``, ``id_rsa``), a URL (its
        credentials, if any, are found on their own) or a public key
        (``ssh-ed25519 AAAA...``); False for anything else, and for a path-looking value
        with a random-looking part (``/Kq8vZ2xPw9LmN4tR``: base64 starts with ``/`` too).
    """
    if _URL_START.match(value) or _PUBLIC_KEY.match(value):
        return True
    if not _PATH_CHARS.fullmatch(value) or any(map(_looks_random, value.split("/"))):
        return False
    last = value.rsplit("/", 1)[-1]
    return (
        value.startswith(_PATH_START)
        or _EXTENSION.search(last) is not None
        or _KEY_FILE.fullmatch(last) is not None
    )


def _looks_random(part: str) -> bool:
    """A path part that is rather a random string: 16+ characters before any dot,
    mixing upper case, lower case and digits."""
    stem = part.split(".", 1)[0]
    return (
        len(stem) >= 16
        and any(c.isupper() for c in stem)
        and any(c.islower() for c in stem)
        and any(c.isdigit() for c in stem)
    )


def is_secret_assignment(name: str, value: str, *, parameter: bool = False) -> bool:
    """Tell whether ``NAME=value`` sets a secret.

    Args:
        name: the variable, option, query parameter or form field name.
        value: its value as the program gets it (quotes removed).
        parameter: ``name`` is a query parameter or form field
            (:func:`is_secret_parameter` rather than :func:`is_secret_name`).
    Returns:
        False for a reference (``$VAR``, empty) or a switch (``1``, ``true``). Else True
        when the name announces a secret, except that a name ending in KEY holds one
        only when the value is not a path, file name, URL or public key
        (:func:`names_a_place`); a ``*_DSN`` holds one when it is a URL with a user
        part (``https://KEY@host/1``); a ``*_WEBHOOK`` / ``*_WEBHOOK_URL`` /
        ``*_HOOK_URL`` when it is a URL (webhook URLs carry their secret in the path).
    """
    if is_reference(value) or is_setting(value):
        return False
    words = name_words(name)
    if not words or (not parameter and name.upper() in _NOT_SECRET_NAMES):
        return False
    if words[-1] == "DSN":
        return _URL_USERINFO.match(value) is not None
    webhook = any(word in _WEBHOOK_WORDS or word.endswith("WEBHOOK") for word in words)
    if webhook and (words[-1] in _WEBHOOK_ENDS or words[-1].endswith("WEBHOOK")):
        return _URL_START.match(value) is not None
    if words[-1] in _NOT_A_VALUE:
        return False
    if _names_a_key(words, anywhere=parameter):
        return not names_a_place(value)
    return is_secret_parameter(name) if parameter else is_secret_name(name)
