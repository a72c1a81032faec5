"""Remote URLs: taking credentials out (split_credentials) and masking them (redact_url)."""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronsync.core.urls import TOKEN_USER, RemoteURL, redact_url, split_credentials

# --- split_credentials ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "stripped", "username", "password"),
    [
        ("https://user:TOKEN@git.example.com/jobs.git", "https://git.example.com/jobs.git",
         "user", "TOKEN"),
        ("https://bob:s3cr3t%40x@git.example.test/jobs.git", "https://git.example.test/jobs.git",
         "bob", "s3cr3t@x"),
        ("https://a%3Ab%40c:p%3Aw%25d@host/x.git", "https://host/x.git", "a:b@c", "p:w%d"),
        ("https://u:pa:ss@host/x", "https://host/x", "u", "pa:ss"),
        ("https://u:p@ss@host/x", "https://host/x", "u", "p@ss"),  # unencoded "@": last one wins
        ("https://TOKEN@github.com/org/jobs.git", "https://github.com/org/jobs.git", "TOKEN", None),
        ("https://:TOKEN@host/x.git", "https://host/x.git", "", "TOKEN"),
        ("https://u:@host/x.git", "https://host/x.git", "u", ""),
        ("HTTPS://u:p@Host:8443/x.git?ref=a@b", "HTTPS://Host:8443/x.git?ref=a@b", "u", "p"),
        ("http://u:p@[::1]:8080/x.git", "http://[::1]:8080/x.git", "u", "p"),
        ("ftps://u:p@host/x.git", "ftps://host/x.git", "u", "p"),
        ("https://@host/x.git", "https://host/x.git", None, None),
    ],
)  # fmt: skip
def test_split_credentials_takes_the_user_info_out(
    url: str, stripped: str, username: Optional[str], password: Optional[str]
) -> None:
    assert split_credentials(url) == RemoteURL(stripped, username, password)


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/jobs.git",
        "https://host/path/with@at/x.git",  # "@" after the host is not user-info
        "https://host/x.git?user=a@b",
        "ssh://git@host/jobs.git",
        "ssh://deploy:secret@host:2222/jobs.git",
        "git+ssh://git@host/jobs.git",
        "git@github.com:org/jobs.git",
        "deploy@host:jobs.git",
        "git://host/jobs.git",
        "file:///srv/git/jobs.git",
        "/srv/git/jobs.git",
        "codecommit://profile@repo",
        "",
    ],
)
def test_split_credentials_leaves_other_urls_unchanged(url: str) -> None:
    remote = split_credentials(url)
    assert remote == RemoteURL(url)
    assert remote.has_credentials is False


def test_has_credentials() -> None:
    assert split_credentials("https://u:p@h/x").has_credentials is True
    assert split_credentials("https://t@h/x").has_credentials is True
    assert split_credentials("https://h/x").has_credentials is False


def test_remote_url_repr_hides_the_password() -> None:
    remote = split_credentials("https://bob:s3cr3t@host/x.git")
    assert "s3cr3t" not in repr(remote)
    assert "bob" in repr(remote)


@given(
    user=st.text(min_size=1, max_size=20),
    password=st.text(max_size=20),
    path=st.text(alphabet="abc/._-", max_size=20),
)
def test_split_credentials_decodes_any_encoded_user_info(
    user: str, password: str, path: str
) -> None:
    url = f"https://{quote(user, safe='')}:{quote(password, safe='')}@host.test/{path}"
    assert split_credentials(url) == RemoteURL(f"https://host.test/{path}", user, password)


@pytest.mark.parametrize(
    ("url", "stripped", "username", "password"),
    [
        ("https://host/x.git?access_token=T0K", "https://host/x.git", TOKEN_USER, "T0K"),
        ("https://host/x.git?ref=main&private_token=T%2F1", "https://host/x.git?ref=main",
         TOKEN_USER, "T/1"),
        ("https://host/x.git?token=T&ref=a#frag", "https://host/x.git?ref=a#frag",
         TOKEN_USER, "T"),
        ("https://deploy@host/x.git?access_token=T", "https://host/x.git", "deploy", "T"),
        ("http://[::1]:8080/x.git?ACCESS%5FTOKEN=T", "http://[::1]:8080/x.git", TOKEN_USER, "T"),
    ],
)  # fmt: skip
def test_split_credentials_takes_a_query_token_out_as_the_password(
    url: str, stripped: str, username: Optional[str], password: Optional[str]
) -> None:
    remote = split_credentials(url)
    assert remote == RemoteURL(stripped, username, password)
    assert remote.unusable is None


@pytest.mark.parametrize(
    "url",
    [
        "https://u:pw@host/x.git?access_token=T",
        "https://host/x.git?access_token=T&sig=S",
    ],
)
def test_split_credentials_refuses_more_than_one_secret(url: str) -> None:
    remote = split_credentials(url)
    assert remote.unusable == "it carries more than one secret (give one token)"
    assert "T" not in remote.url.replace("https", "") and "pw" not in remote.url


def test_query_parameters_of_other_schemes_are_left_alone() -> None:
    assert split_credentials("ssh://git@host/x.git?token=T") == RemoteURL(
        "ssh://git@host/x.git?token=T"
    )


# --- redact_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:tok@host/x.git", "https://***@host/x.git"),
        ("https://tok@host:8443/x.git", "https://***@host:8443/x.git"),
        ("https://host/x.git", "https://host/x.git"),
        ("ssh://git@host/x.git", "ssh://***@host/x.git"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),
        ("/srv/git/x.git", "/srv/git/x.git"),
        ("fatal: 'https://u:p@h/x/': 403", "fatal: 'https://***@h/x/': 403"),
    ],
)  # fmt: skip
def test_redact_url_masks_user_info(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://host/x.git?access_token=abc", "https://host/x.git?access_token=***"),
        ("https://host/x.git?private_token=abc", "https://host/x.git?private_token=***"),
        ("https://host/x.git?token=abc", "https://host/x.git?token=***"),
        ("https://host/x.git?ref=main&password=abc", "https://host/x.git?ref=main&password=***"),
        ("https://h/x?passwd=a&secret=b&api_key=c", "https://h/x?passwd=***&secret=***&api_key=***"),
        ("https://h/x?sv=1&sig=abc%2Bdef&se=2", "https://h/x?sv=1&sig=***&se=2"),
        ("https://h/x?X-Amz-Signature=abc&X-Amz-Credential=k", "https://h/x?X-Amz-Signature=***&X-Amz-Credential=***"),
        ("https://h/x?Auth=abc", "https://h/x?Auth=***"),
        ("https://h/x?ACCESS%5FTOKEN=abc", "https://h/x?ACCESS%5FTOKEN=***"),
        ("https://h/x?token=abc#frag", "https://h/x?token=***#frag"),
        ("https://h/x?token=", "https://h/x?token=***"),
        ("https://u:p@h/x?token=abc&ref=main", "https://***@h/x?token=***&ref=main"),
        ("fatal: 'https://h/x?token=abc' not found", "fatal: 'https://h/x?token=***' not found"),
        ("https://h/x?token=abc https://g/y?key=def", "https://h/x?token=*** https://g/y?key=***"),
    ],
)  # fmt: skip
def test_redact_url_masks_secret_query_parameters(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://host/x.git?ref=main&depth=1",
        "https://host/x.git?name=token",  # only the value of a secret-named parameter
        "https://host/x.git?flag",
        "no url here",
    ],
)
def test_redact_url_keeps_harmless_query_parameters(url: str) -> None:
    assert redact_url(url) == url


def test_redact_url_is_idempotent() -> None:
    once = redact_url("https://u:p@h/x?token=abc&ref=main")
    assert redact_url(once) == once
