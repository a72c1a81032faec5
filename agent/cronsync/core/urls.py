"""Remote URLs: take the credentials out of them, and mask them in messages.

Pure functions, no I/O. :func:`split_credentials` separates the user-info of an
``https://user:secret@host/...`` URL from the address git may see (and store);
:func:`redact_url` masks credentials in any text shown to a human.
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

_CREDENTIAL_SCHEMES = frozenset({"http", "https", "ftp", "ftps"})
"""Transports where git asks for a username and password (through curl).

Other schemes keep their user-info: for ssh it names the account (no secret), and
remote helpers (``codecommit://profile@repo``...) give it their own meaning.
"""


@dataclass(frozen=True)
class RemoteURL:
    """A remote URL with its credentials taken out.

    Attributes:
        url: the URL without user-info; safe for argv, ``.git/config`` and logs
            (apart from secrets a query string may carry).
        username: the percent-decoded user name, or None if the URL had no user-info.
        password: the percent-decoded password, or None if the URL had none.
            Never shown by ``repr``.
    """

    url: str
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)

    @property
    def has_credentials(self) -> bool:
        """Whether the original URL carried a username or a password."""
        return self.username is not None or self.password is not None


def split_credentials(url: str) -> RemoteURL:
    """Separate the user-info of an http(s)/ftp(s) ``url`` from the rest.

    Args:
        url: a remote URL as configured, e.g. ``https://user:TOKEN@host/jobs.git``;
            ``%40`` (``@``), ``%3A`` (``:``) and other escapes in the user-info are
            decoded.

    Returns:
        ``RemoteURL("https://host/jobs.git", "user", "TOKEN")``. A URL without
        user-info, an ssh or scp-style address (``git@host:path``), a local path or
        any other scheme comes back unchanged with no credentials.
    """
    match = _USERINFO_URL.match(url)
    if match is None or match["scheme"].lower() not in _CREDENTIAL_SCHEMES:
        return RemoteURL(url)
    stripped = f"{match['scheme']}://{url[match.end() :]}"
    if not match["userinfo"]:  # "https://@host/": an empty user-info, nothing secret
        return RemoteURL(stripped)
    user, colon, password = match["userinfo"].partition(":")
    return RemoteURL(stripped, unquote(user), unquote(password) if colon else None)


def _mask_secret_param(match: re.Match[str]) -> str:
    """``name=***`` for a secret-looking query parameter; the parameter as is otherwise."""
    name = unquote(match["name"]).lower()
    if any(word in name for word in _SECRET_PARAM_WORDS):
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
