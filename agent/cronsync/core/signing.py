"""Signed commits: which signature a commit carries and what git's check of it means (pure).

:mod:`cronsync.repo.signature` runs git (``cat-file``, ``verify-commit --raw`` and
``log --format=%G?…``) on the commit a sync would install; this module turns what git
said into a :class:`Verdict` with a one-line reason (no signature, unknown key, bad
signature, expired key, ...). :class:`TrustSet` is the host's configuration of it
(``[repo] require_signed``, ``allowed_signers``, ``gpg_home`` of agent.toml).

Git checks one signature header only, the one of the repository's object format
(``gpgsig`` in a SHA-1 repository, ``gpgsig-sha256`` in a SHA-256 one), and picks the
program (ssh-keygen, gpg, gpgsm) from that signature's armour. So the format is read
from that header alone, and a commit carrying more than one signature header is
refused: what cronsync read and what git checked could otherwise differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from cronsync.core.textshow import visible

SSH = "ssh"
GPG = "gpg"
SIGNING_FORMATS = (SSH, GPG)
"""The values of ``[repo] require_signed`` and ``validate --require-signed``."""

# Where a signature starts in a commit object's ``gpgsig`` header, by format.
_ARMOR = (
    ("-----BEGIN SSH SIGNATURE-----", SSH),
    ("-----BEGIN PGP SIGNATURE-----", GPG),
    ("-----BEGIN PGP MESSAGE-----", GPG),
    ("-----BEGIN SIGNED MESSAGE-----", "x509"),
)
# The signature header git checks, by the repository's object format
# (``git rev-parse --show-object-format``).
_HEADER_OF = {"sha1": "gpgsig", "sha256": "gpgsig-sha256"}
OBJECT_FORMATS = tuple(_HEADER_OF)
SEVERAL = "several"
""":func:`signature_format` of a commit carrying more than one signature header."""

# git's %G? letters that mean "good signature, and the key is in the trust set".
# ssh: "U" is a good signature by a key that is NOT in allowed_signers. gpg: "U" is a
# good signature by a key of the keyring whose owner trust was never set — the keyring
# given to cronsync is the trust set, so every key in it counts.
_ACCEPTED = {SSH: ("G",), GPG: ("G", "U")}
_MAX_SHOWN = 120


@dataclass(frozen=True)
class TrustSet:
    """What a commit's signature must verify against.

    Attributes:
        format: ``ssh`` or ``gpg``.
        path: the ``allowed_signers`` file (ssh) or the keyring directory, GNUPGHOME (gpg).
        where: how to name ``path`` in a message (``agent.toml: repo.allowed_signers``,
            ``--gpg-home``).
    """

    format: str
    path: str
    where: str


@dataclass(frozen=True)
class GitCheck:
    """What git said about a signed commit.

    Attributes:
        status: exit status of ``git verify-commit --raw``.
        raw: its stderr (gpg's status lines, or ssh-keygen's messages).
        code: git's ``%G?`` letter (G, B, U, X, Y, R, E, N).
        key: ``%GK``, the key (gpg key id, ssh fingerprint).
        signer: ``%GS``, the signer's name (gpg user id, ssh principal).
    """

    status: int
    raw: str
    code: str
    key: str
    signer: str


@dataclass(frozen=True)
class Verdict:
    """Whether a commit may be installed, and why (one line)."""

    ok: bool
    reason: str


def signature_format(commit_object: str, object_format: str) -> Optional[str]:
    """Return the format of the signature git checks in a raw commit object.

    Args:
        commit_object: the object's text (``git cat-file commit``): headers, a blank
            line, the message.
        object_format: the repository's object format, one of :data:`OBJECT_FORMATS`.

    Returns:
        ``ssh``, ``gpg``, ``x509`` or ``unknown`` for the signature header of
        ``object_format``; :data:`SEVERAL` when the commit carries more than one
        signature header (of either format); None when it carries none of its object
        format (a signature of the other format, or one quoted in the message, is none
        to git).

    Raises:
        ValueError: ``object_format`` is not one of :data:`OBJECT_FORMATS`.
    """
    if object_format not in _HEADER_OF:
        raise ValueError(f"unknown object format {object_format!r}")
    headers = commit_object.split("\n\n", 1)[0]
    found = [
        (name, value)
        for name, _, value in (line.partition(" ") for line in headers.split("\n"))
        if name in _HEADER_OF.values()
    ]
    if len(found) > 1:
        return SEVERAL
    value = next((value for name, value in found if name == _HEADER_OF[object_format]), None)
    if value is None:
        return None
    return next((fmt for armor, fmt in _ARMOR if value.startswith(armor)), "unknown")


def _shown(text: str) -> str:
    """A key or signer name as one short, printable piece of a message."""
    text = visible(text.strip())
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _key(check: GitCheck) -> str:
    return f" {_shown(check.key)}" if check.key.strip() else ""


def _refusal(required: str, check: GitCheck) -> str:
    """The reason git's answer is not a good signature by a trusted key."""
    key, raw = _key(check), check.raw.lower()
    if check.code == "B":
        return f"bad signature{key} (the commit does not match its signature)"
    if check.code in ("Y",) or "key has expired" in raw or "not yet valid" in raw:
        return f"expired key{key}"
    if check.code == "X":
        return f"expired signature{key}"
    if check.code == "R":
        return f"revoked key{key}"
    if required == SSH and check.code == "U":
        return f"unknown key{key} (not in the allowed signers file)"
    if required == GPG and (check.code == "E" or "no_pubkey" in raw):
        return f"unknown key{key} (not in the keyring)"
    if check.code in _ACCEPTED[required]:  # good, but git still said no (owner trust never)
        return f"untrusted key{key}"
    if check.code == "N":
        return "no signature"
    last = next((line for line in reversed(check.raw.splitlines()) if line.strip()), "")
    return f"signature cannot be checked{key}" + (f": {_shown(last)}" if last else "")


def judge(required: str, found: Optional[str], check: Optional[GitCheck]) -> Verdict:
    """Decide whether a commit's signature lets it be installed.

    Args:
        required: the format the host requires (``ssh`` or ``gpg``).
        found: :func:`signature_format` of the commit.
        check: git's answer (None when git was not asked: no signature, other format).

    Returns:
        ok when the signature has the required format, git's ``verify-commit`` exits 0
        and ``%G?`` says good by a trusted key; else the reason: no signature, more than
        one signature header, signed with another format, bad signature, expired key or
        signature, revoked key, unknown key, or why it cannot be checked.
    """
    if found is None:
        return Verdict(False, "no signature")
    if found == SEVERAL:
        return Verdict(False, "more than one signature header (git would check only one of them)")
    if found != required:
        return Verdict(False, f"signed with {found}, but {required} signatures are required")
    if check is None:
        return Verdict(False, "signature not checked")
    if check.status == 0 and check.code in _ACCEPTED[required]:
        by = f" by {_shown(check.signer)}" if check.signer.strip() else ""
        return Verdict(True, f"good {required} signature{by} (key{_key(check)})")
    return Verdict(False, _refusal(required, check))
