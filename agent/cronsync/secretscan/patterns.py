"""Secret detectors on the raw text: URLs, AWS keys, auth headers, ``key=value``, JSON
fields, webhook URLs and the shapes of well-known tokens.

Pure: no I/O. :func:`scan_patterns` runs each pattern over the whole text, whatever the
command around it (``scheme://user:pass@host``, ``?access_token=X``, ``AKIA...``,
``Authorization: Bearer X``, ``DB_PASSWORD=X``, ``"api_key": "X"``,
``https://hooks.slack.com/services/X``, ``sk_live_X``).
"""

from __future__ import annotations

import re
from typing import Callable, Optional

from cronsync.secretscan.kinds import (
    AUTH_HEADER,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    ENV_ASSIGNMENT,
    FORM_FIELD,
    KNOWN_TOKEN,
    URL_CREDENTIALS,
    URL_PARAMETER,
    WEBHOOK_URL,
    env_name,
    is_reference,
    is_setting,
)
from cronsync.secretscan.names import is_secret_assignment, may_name_secret
from cronsync.secretscan.words import Scan, WordReader

_URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^\s/?#@'\"]*)@(?P<host>[A-Za-z0-9.-]*)"
)
_TOKEN_USER = re.compile(
    r"(?:ghp_|gho_|ghu_|ghs_|github_pat_|glpat-|xox[abpr]-)\S+|[A-Za-z0-9_-]{32,}"
)
# Credentials with a recognisable shape: (group, suggested variable, label, pattern).
_TOKEN_SHAPES = (
    ("stripe", "STRIPE_SECRET_KEY", "Stripe key", r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}"),
    ("stripe_hook", "STRIPE_WEBHOOK_SECRET", "Stripe webhook secret", r"whsec_[0-9A-Za-z]{16,}"),
    ("slack", "SLACK_TOKEN", "Slack token", r"xox[abposre]-[0-9A-Za-z-]{8,}"),
    ("slack_app", "SLACK_APP_TOKEN", "Slack app token", r"xapp-\d-[0-9A-Za-z-]{8,}"),
    ("github", "GITHUB_TOKEN", "GitHub token", r"gh[pousr]_[0-9A-Za-z]{20,}|github_pat_\w{20,}"),
    ("gitlab", "GITLAB_TOKEN", "GitLab token", r"gl(?:pat|dt|ptt|rt|cbt|ft|imt)-[\w-]{16,}"),
    ("google", "GOOGLE_API_KEY", "Google API key", r"AIza[\w-]{35}(?![\w-])"),
    ("sendgrid", "SENDGRID_API_KEY", "SendGrid key", r"SG\.[\w-]{16,}\.[\w-]{16,}"),
    ("mailgun", "MAILGUN_API_KEY", "Mailgun key", r"key-[0-9a-z]{32}(?![0-9A-Za-z])"),
    ("npm", "NPM_TOKEN", "npm token", r"npm_[0-9A-Za-z]{36}(?![0-9A-Za-z])"),
    ("pypi", "PYPI_TOKEN", "PyPI token", r"pypi-AgE[\w-]{50,}"),
    ("huggingface", "HF_TOKEN", "Hugging Face token", r"hf_[A-Za-z]{30,}(?![0-9A-Za-z])"),
    ("openai", "API_KEY", "sk- API key", r"sk-(?:ant-|proj-|svcacct-)?[\w-]{32,}"),
    ("digitalocean", "DIGITALOCEAN_TOKEN", "DigitalOcean token", r"do[opr]_v1_[0-9a-f]{64}"),
    ("shopify", "SHOPIFY_TOKEN", "Shopify token", r"shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}"),
    ("telegram", "TELEGRAM_BOT_TOKEN", "Telegram bot token", r"\d{6,12}:AA[\w-]{30,}"),
    ("jwt", "JWT", "JSON web token", r"eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}"),
)
_TOKEN = re.compile(  # one look-behind for all: fast on long text
    "(?<![\\w-])(?:"
    + "|".join(f"(?P<{group}>{pattern})" for group, _e, _l, pattern in _TOKEN_SHAPES)
    + ")"
)
_TOKEN_NAMES = {group: (env, label) for group, env, label, _p in _TOKEN_SHAPES}
# A web URL: its host and path (query and fragment are other rules').
_WEB_URL = re.compile(
    r"\bhttps?://(?:[^\s/?#@'\"]*@)?(?P<host>[A-Za-z0-9.-]+)(?::\d+)?"
    r"(?P<path>/[^\s'\"?#<>`|;&()\\]*)",
    re.IGNORECASE,
)
_SLACK_HOOK = re.compile(r"/(?:services|workflows|triggers)/(?=[^/])", re.I)
_DISCORD_HOOK = re.compile(r"/api(?:/v\d+)?/webhooks/\d+/(?P<secret>[^/]+)", re.I)
_TELEGRAM_BOT = re.compile(r"/(?:file/)?bot(?P<secret>\d+:[\w-]+)")
# Path words after which a token-like part is a secret (/hooks/X, /webhook/X, /key/X).
_HOOK_MARKER = re.compile(
    r"/(?:hooks|webhooks?|webhookb2|key|keys|token|tokens|apikey|api_key|access_token)"
    r"(?=/)",
    re.IGNORECASE,
)
_TOKEN_PART = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[\w@.~%+:=-]{16,}")
_JSON_FIELD = re.compile(
    r'(?P<quote>\\?")(?P<name>[A-Za-z_][\w.-]*)(?P=quote)\s*:\s*'
    r'(?P=quote)(?P<value>[^"\\]+)(?P=quote)'
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
        elif not colon and (_TOKEN_USER.fullmatch(user) or _TOKEN.fullmatch(user)):
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
        lowered = key.lower()
        before = scan.text[match.start() - 1] if match.start() else ""
        query = before in ("?", "&")
        listed = before in (",", ";") and lowered in _LIST_KEYS
        if not listed and not may_name_secret(key):
            continue
        stops = "&#,;'\"" if (query or before in (",", ";") or match["define"]) else ""
        start, end, value = _read_value(scan.text, match.end(), stops)
        if listed:
            secret = not is_reference(value) and not is_setting(value)
        else:
            secret = is_secret_assignment(key, value, parameter=query)
        if not secret:
            continue
        kind = URL_PARAMETER if query else ENV_ASSIGNMENT
        scan.add(kind, (start, end), value, env_name(key), key)


def _json_rule(scan: Scan) -> None:
    """``"api_key": "X"`` (also ``\\"api_key\\":\\"X\\"`` inside a double-quoted word)."""
    if ":" not in scan.text:
        return
    for match in _JSON_FIELD.finditer(scan.text):
        name, value = match["name"], match["value"]
        if may_name_secret(name) and is_secret_assignment(name, value, parameter=True):
            label = f'JSON "{name}"'
            scan.add(FORM_FIELD, match.span("value"), value, env_name(name), label)


def _webhook_rule(scan: Scan) -> None:
    """The secret part of a webhook or bot URL (Slack, Discord, Telegram, /hooks/...)."""
    if "://" not in scan.text:
        return
    for match in _WEB_URL.finditer(scan.text):
        host, path, base = match["host"].lower(), match["path"], match.start("path")
        found = _hook_secret(host, path)
        if found is not None:
            (start, end), env, label = found
            scan.add(WEBHOOK_URL, (base + start, base + end), path[start:end], env, label)


def _hook_secret(host: str, path: str) -> Optional[tuple[tuple[int, int], str, str]]:
    """Return the span of the secret in a URL path, a variable and a label (or None)."""
    if host == "hooks.slack.com":
        slack = _SLACK_HOOK.match(path)
        if slack:
            end = len(path.rstrip("/"))
            return (slack.end(), end), "SLACK_WEBHOOK_PATH", "Slack webhook URL"
    bot = _TELEGRAM_BOT.search(path)
    if bot:
        return bot.span("secret"), "TELEGRAM_BOT_TOKEN", "Telegram bot URL"
    discord = _DISCORD_HOOK.match(path)
    if discord and re.fullmatch(r"(?:[\w-]+\.)?discord(?:app)?\.com", host):
        return discord.span("secret"), "DISCORD_WEBHOOK_TOKEN", "Discord webhook URL"
    for marker in _HOOK_MARKER.finditer(path):
        offset = marker.end() + 1
        for part in path[offset:].split("/"):
            if _TOKEN_PART.fullmatch(part):  # from the first token-like part to the end
                env = env_name(host.split(".", 1)[0], "webhook", "path")
                return (offset, len(path.rstrip("/"))), env, "webhook URL"
            offset += len(part) + 1
    return None


def _token_rule(scan: Scan) -> None:
    """Values shaped like a well-known service's credential, wherever they stand."""
    for match in _TOKEN.finditer(scan.text):
        env, label = _TOKEN_NAMES[match.lastgroup or ""]
        scan.add(KNOWN_TOKEN, match.span(), match[0], env, label)


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


# The order matters for equal findings: the first one found is kept (_key_value_rule's
# STRIPE_KEY=X names the variable better than _token_rule's STRIPE_SECRET_KEY).
_TEXT_RULES: tuple[Callable[[Scan], None], ...] = (
    _url_rule,
    _aws_rule,
    _header_rule,
    _key_value_rule,
    _json_rule,
    _webhook_rule,
    _token_rule,
)


def scan_patterns(scan: Scan) -> None:
    """Add to ``scan`` every candidate the text patterns find in ``scan.text``."""
    for rule in _TEXT_RULES:
        rule(scan)
