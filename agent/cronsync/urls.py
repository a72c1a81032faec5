"""URLs in messages and files: mask the credentials a remote URL may carry."""

from __future__ import annotations

import re

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def redact_url(url: str) -> str:
    """Mask credentials in every ``scheme://user:secret@host`` URL found in ``url``.

    Args:
        url: a URL, or any text containing URLs (e.g. a git error line).

    Returns:
        the text with each URL's user-info replaced by ``***``
        (``https://user:tok@host/x.git`` → ``https://***@host/x.git``).
        scp-like ``git@host:path`` addresses carry no secret and are kept.
    """
    return _URL_USERINFO.sub(r"\g<scheme>***@", url)
