"""What git says about a commit's signature, turned into a verdict and one line (pure)."""

from __future__ import annotations

from typing import Optional

import pytest

from cronsync.core.signing import SEVERAL, GitCheck, judge, signature_format

SSH_SIG = "gpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lHAAAAAQ\n -----END SSH SIGNATURE-----\n"
PGP_SIG = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iHUEABYKAB0\n -----END PGP SIGNATURE-----\n"
HEAD = (
    "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
    "author a <a@x> 1 +0000\ncommitter a <a@x> 1 +0000\n"
)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (HEAD + "\nunsigned\n", None),
        (HEAD + SSH_SIG + "\nsigned\n", "ssh"),
        (HEAD + PGP_SIG + "\nsigned\n", "gpg"),
        (HEAD + "gpgsig -----BEGIN SIGNED MESSAGE-----\n x\n\nsigned\n", "x509"),
        (HEAD + "gpgsig something else\n\nsigned\n", "unknown"),
        # a signature quoted in the message is no signature
        (HEAD + "\nquoting\ngpgsig -----BEGIN SSH SIGNATURE-----\n", None),
        (HEAD + "mergetag object 1234\n -----BEGIN PGP SIGNATURE-----\n\nmerge\n", None),
        # git in a SHA-1 repository checks gpgsig only: gpgsig-sha256 is no signature
        (HEAD + SSH_SIG.replace("gpgsig", "gpgsig-sha256") + "\nsigned\n", None),
        # ... and next to a gpgsig, git and cronsync might read different ones
        (HEAD + SSH_SIG.replace("gpgsig", "gpgsig-sha256") + PGP_SIG + "\nx\n", SEVERAL),
        (HEAD + PGP_SIG + SSH_SIG.replace("gpgsig", "gpgsig-sha256") + "\nx\n", SEVERAL),
        (HEAD + SSH_SIG + SSH_SIG + "\ntwice\n", SEVERAL),
    ],
)
def test_signature_format_reads_only_the_header(text: str, found: Optional[str]) -> None:
    assert signature_format(text, "sha1") == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (HEAD + SSH_SIG.replace("gpgsig", "gpgsig-sha256") + "\nsigned\n", "ssh"),
        (HEAD + "gpgsig-sha256 -----BEGIN PGP SIGNATURE-----\n x\n\nsigned\n", "gpg"),
        (HEAD + SSH_SIG + "\nsigned\n", None),  # SHA-1's header, not checked by git here
        (HEAD + PGP_SIG + SSH_SIG.replace("gpgsig", "gpgsig-sha256") + "\nx\n", SEVERAL),
    ],
)
def test_a_sha256_repository_signature_is_gpgsig_sha256(text: str, found: Optional[str]) -> None:
    assert signature_format(text, "sha256") == found


def test_an_unknown_object_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="sha512"):
        signature_format(HEAD + SSH_SIG + "\nsigned\n", "sha512")


def test_more_than_one_signature_header_is_refused() -> None:
    verdict = judge("ssh", SEVERAL, None)
    assert not verdict.ok
    assert verdict.reason.startswith("more than one signature header")


def check(code: str, status: int = 1, raw: str = "", key: str = "K1", signer: str = "") -> GitCheck:
    return GitCheck(status, raw, code, key, signer)


@pytest.mark.parametrize(
    ("required", "found", "answer", "reason"),
    [
        ("ssh", None, None, "no signature"),
        ("gpg", "ssh", None, "signed with ssh, but gpg signatures are required"),
        ("ssh", "x509", None, "signed with x509, but ssh signatures are required"),
        ("ssh", "ssh", check("B", key=""), "bad signature (the commit does not match"),
        ("gpg", "gpg", check("B"), "bad signature K1 (the commit does not match"),
        ("ssh", "ssh", check("U"), "unknown key K1 (not in the allowed signers file)"),
        (
            "ssh",
            "ssh",
            check("U", raw="f:1: key has expired: verify time 2026 > valid-before 2020"),
            "expired key K1",
        ),
        (
            "gpg",
            "gpg",
            check("E", raw="[GNUPG:] NO_PUBKEY K1"),
            "unknown key K1 (not in the keyring)",
        ),
        ("gpg", "gpg", check("Y"), "expired key K1"),
        ("gpg", "gpg", check("X"), "expired signature K1"),
        ("gpg", "gpg", check("R"), "revoked key K1"),
        ("gpg", "gpg", check("U", status=1), "untrusted key K1"),
        (
            "ssh",
            "ssh",
            check("E", raw="error: ssh-keygen died\n"),
            "signature cannot be checked K1: error",
        ),
        # a good verdict needs both git's exit status and the letter
        ("ssh", "ssh", check("G", status=1), "untrusted key K1"),
    ],
)
def test_refusals_say_why(
    required: str, found: Optional[str], answer: Optional[GitCheck], reason: str
) -> None:
    verdict = judge(required, found, answer)
    assert not verdict.ok
    assert verdict.reason.startswith(reason), verdict.reason
    assert "\n" not in verdict.reason


@pytest.mark.parametrize(
    ("required", "answer", "reason"),
    [
        (
            "ssh",
            check("G", 0, signer="alice@example.com", key="SHA256:abc"),
            "good ssh signature by alice@example.com (key SHA256:abc)",
        ),
        # the keyring is the trust set: a key without owner trust counts
        ("gpg", check("U", 0, signer="Alice <a@x>"), "good gpg signature by Alice <a@x> (key K1)"),
        ("gpg", check("G", 0), "good gpg signature (key K1)"),
    ],
)
def test_good_signatures_pass(required: str, answer: GitCheck, reason: str) -> None:
    verdict = judge(required, required, answer)
    assert verdict.ok
    assert verdict.reason == reason


def test_an_ssh_key_outside_the_allowed_signers_never_passes() -> None:
    # ssh-keygen's "Good signature" for a key nobody allowed: git says U and exits 1
    assert not judge("ssh", "ssh", check("U", status=0)).ok


def test_names_from_a_signature_are_shown_on_one_short_line() -> None:
    verdict = judge("gpg", "gpg", check("G", 0, signer="Eve\nrefused: fake\x1b[31m" + "x" * 300))
    assert verdict.ok
    assert "\n" not in verdict.reason and "\x1b" not in verdict.reason
    assert len(verdict.reason) < 200
