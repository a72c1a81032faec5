"""Secret detectors on the raw text: URLs, AWS keys, auth headers and ``key=value``.

Pure: no I/O. :func:`scan_patterns` runs each pattern over the whole text, whatever the
command around it (``scheme://user:pass@host``, ``?access_token=X``, ``AKIA...``,
``Authorization: Bearer X``, ``DB_PASSWORD=X``).
"""

from __future__ import annotations

import re
from typing import Callable

from .secretkinds import (
    AUTH_HEADER,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    ENV_ASSIGNMENT,
    URL_CREDENTIALS,
    URL_PARAMETER,
    env_name,
    is_secret_name,
    is_setting,
)
from .secretwords import Scan, WordReader

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


def _url_rule(scan: Scan) -> None:
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


def _aws_rule(scan: Scan) -> None:
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


def _header_rule(scan: Scan) -> None:
    for match in _AUTH_HEADER.finditer(scan.text):
        group = "value" if match["value"] is not None else "hvalue"
        name = match["name"] or match["header"]
        env = "API_TOKEN" if match["name"] else env_name(match["header"])
        scan.add(AUTH_HEADER, match.span(group), match[group], env, f"{name} header")


def _key_value_rule(scan: Scan) -> None:
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
        if is_setting(value):
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
    words = WordReader(text[index:end]).read()
    value = words[0][0].text if words and words[0] else ""
    return index, end, value


_TEXT_RULES: tuple[Callable[[Scan], None], ...] = (
    _url_rule,
    _aws_rule,
    _header_rule,
    _key_value_rule,
)


def scan_patterns(scan: Scan) -> None:
    """Add to ``scan`` every candidate the text patterns find in ``scan.text``."""
    for rule in _TEXT_RULES:
        rule(scan)
