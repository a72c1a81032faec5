"""Remote URLs: take the credentials out of them, and mask them in messages.

Pure functions, no I/O. :func:`split_credentials` separates the user-info of an
``https://user:secret@host/...`` URL, and a token in its query string
(``?access_token=...``), from the address git may see (and store); :func:`redact_url`
masks credentials in any text shown to a human.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import unquote

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")

# A query parameter (``?name=value`` or ``&name=value``) anywhere in the text; the
# value runs to the next parameter, fragment, whitespace or quote.
_QUERY_PARAM = re.compile(r"(?P<head>[?&](?P<name>[^=&#?\s'\"]*)=)(?P<value>[^&#\s'\"]*)")

_SECRET_PARAM_WORDS = ("token", "password", "passwd", "secret", "key", "sig", "auth", "credential")
"""A query parameter whose name contains one of these (any case) holds a secret."""

# scheme://userinfo@rest, userinfo up to the last "@" before the path, query or
# fragment (so a stray unencoded "@" in a password never leaves a piece behind).
_USERINFO_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#]*)@")

# The query string of a URL: from the first "?" to the fragment.
_QUERY = re.compile(r"\?(?P<query>[^#]*)")

TOKEN_USER = "x-access-token"  # noqa: S105 (a user name, not a secret)
"""The user name sent with a token taken from the query string of a URL without one
(GitHub's name for it; GitLab, Gitea and Azure DevOps take any name with a token)."""

_TWO_SECRETS = "it carries more than one secret (give one token)"

_CREDENTIAL_SCHEMES = frozenset({"http", "https", "ftp", "ftps"})
"""Transports where git asks for a username and password (through curl).

Other schemes keep their user-info: for ssh it names the account (no secret), and
remote helpers (``codecommit://profile@repo``...) give it their own meaning.
"""


@dataclass(frozen=True)
class RemoteURL:
    """A remote URL with its credentials taken out.

    Attributes:
        url: the URL without user-info nor secret query parameters; safe for argv,
            ``.git/config`` and logs.
        username: the percent-decoded user name, or None if the URL had no user-info.
        password: the percent-decoded password, or None if the URL had none.
            Never shown by ``repr``.
        unusable: why the credentials cannot be given to git (None when they can);
            holds no secret.
    """

    url: str
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    unusable: Optional[str] = None

    @property
    def has_credentials(self) -> bool:
        """Whether the original URL carried a username or a password."""
        return self.username is not None or self.password is not None


def split_credentials(url: str) -> RemoteURL:
    """Separate the credentials of an http(s)/ftp(s) ``url`` from the rest.

    Args:
        url: a remote URL as configured, e.g. ``https://user:TOKEN@host/jobs.git``;
            ``%40`` (``@``), ``%3A`` (``:``) and other escapes in the user-info are
            decoded.

    Returns:
        ``RemoteURL("https://host/jobs.git", "user", "TOKEN")``. A secret query
        parameter (its name holds token, password, secret, key, sig, auth or
        credential: ``?access_token=TOKEN``) is taken out too and becomes the
        password, with the URL's user name or :data:`TOKEN_USER`: git would put the
        query string in every helper's argv, and cannot send one to a git server
        anyway (it appends its own paths after it). More than one secret (a password
        and a token, two tokens) leaves ``unusable`` saying so. A URL without
        credentials, an ssh or scp-style address (``git@host:path``), a local path or
        any other scheme comes back unchanged with no credentials.
    """
    match = _USERINFO_URL.match(url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _CREDENTIAL_SCHEMES:
        return RemoteURL(url)
    address, tokens = _take_query_secrets(url)
    user: Optional[str] = None
    password: Optional[str] = None
    if match is not None:
        address = f"{match['scheme']}://{address[match.end() :]}"
        if match["userinfo"]:  # "https://@host/": an empty user-info, nothing secret
            name, colon, secret = match["userinfo"].partition(":")
            user, password = unquote(name), unquote(secret) if colon else None
    if not tokens:
        return RemoteURL(address, user, password)
    if password is not None or len(tokens) > 1:
        return RemoteURL(address, user, None, _TWO_SECRETS)
    return RemoteURL(address, TOKEN_USER if user is None else user, tokens[0])


def _take_query_secrets(url: str) -> tuple[str, list[str]]:
    """Return ``url`` without its secret query parameters, and their decoded values."""
    query = _QUERY.search(url)
    if query is None:
        return url, []
    kept, secrets = [], []
    for parameter in query["query"].split("&"):
        name, equals, value = parameter.partition("=")
        if equals and _is_secret_name(name):
            secrets.append(unquote(value))
        elif parameter:
            kept.append(parameter)
    rest = "?" + "&".join(kept) if kept else ""
    return url[: query.start()] + rest + url[query.end() :], secrets


def _is_secret_name(name: str) -> bool:
    """Whether a query parameter called ``name`` (percent-encoded) holds a secret."""
    lowered = unquote(name).lower()
    return any(word in lowered for word in _SECRET_PARAM_WORDS)


def _mask_secret_param(match: re.Match[str]) -> str:
    """``name=***`` for a secret-looking query parameter; the parameter as is otherwise."""
    if _is_secret_name(match["name"]):
        return f"{match['head']}***"
    return match[0]


def redact_url(url: str) -> str:
    """Mask the credentials of every URL found in ``url``.

    Args:
        url: a URL, or any text containing URLs (e.g. a git error line).

    Returns:
        the text with each URL's user-info replaced by ``***``
        (``https://user:tok@host/x.git`` → ``https://***@host/x.git``) and the value
        of each query parameter whose name contains token, password, passwd,
        secret, key, sig, auth or credential (any case) replaced by ``***``
        (``?access_token=abc&ref=main`` → ``?access_token=***&ref=main``).
        scp-like ``git@host:path`` addresses carry no secret and are kept.
    """
    return _QUERY_PARAM.sub(_mask_secret_param, _URL_USERINFO.sub(r"\g<scheme>***@", url))
