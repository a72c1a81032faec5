"""Checking the signature of the commit a sync would install (``[repo] require_signed``).

Git does the cryptography: ``git cat-file commit`` tells which signature the commit
carries, ``git log --format=%G?…`` and ``git verify-commit --raw`` check it against the
host's trust set (an ``allowed_signers`` file for ssh, a keyring directory used as
GNUPGHOME for gpg); :func:`cronsync.core.signing.judge` turns their answers into a
verdict with a one-line reason. Only the given commit (the branch tip) is checked.

Git runs through :func:`cronsync.repo.gitrun.run_git` with an environment of its own:
no global or system git config (a user's ``~/.gitconfig`` cannot change the programs
or the trust set), no ssh agent, and the signature settings given on the command line,
over anything in the repository's config. Only the program of the required format can
answer: the others are ``/bin/false`` (git picks the program from the signature's
armour), and GNUPGHOME is the trust set's keyring for gpg, an empty private folder for
ssh (never root's own keyring).
The trust set itself must be owned by root (or, unprivileged, this user) and writable by
nobody else, every folder on its way included (:func:`cronsync.files.trusted.check_trusted_path`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from cronsync.core.errors import ConfigError, CronsyncError, SourceError
from cronsync.core.signing import (
    GPG,
    OBJECT_FORMATS,
    SSH,
    GitCheck,
    TrustSet,
    Verdict,
    judge,
    signature_format,
)
from cronsync.files.trusted import UntrustedFile, check_trusted_path
from cronsync.repo.gitrun import GitFailed, check_rev, failure_reason, in_checkout, run_git

DEFAULT_TIMEOUT = 60.0
"""Seconds one git command of the check may take (gpg may be slow, never endless)."""

_PROGRAMS = {SSH: ("ssh-keygen", "openssh-client"), GPG: ("gpg", "gnupg")}
_REFUSE = "/bin/false"  # the program git runs for a format that is not required
# git's program settings, by the format they verify (x509: gpgsm, never required)
_PROGRAM_SETTINGS = {SSH: "gpg.ssh.program", GPG: "gpg.program", "x509": "gpg.x509.program"}
# %G? letter, key, signer: one per line (a signer's name holds no newline: git's own
# parsing splits gpg's status lines and ssh's principals at newlines).
_FORMAT = "--format=%G?%n%GK%n%GS"


def check_trust_set(trust: TrustSet) -> str:
    """Check the trust set and the program that verifies with it; return its real path.

    Raises:
        ConfigError: the program (``ssh-keygen``, ``gpg``) is not installed, or the
            file or folder is missing, unreadable, not of its type, or could be changed
            by someone other than root (or, unprivileged, this user) — naming
            ``trust.where``.
    """
    program, package = _PROGRAMS[trust.format]
    if shutil.which(program) is None:
        raise ConfigError(
            f"{trust.where}: cannot check {trust.format} signatures: {program} is not "
            f"installed (install {package})"
        )
    owner = "root" if os.geteuid() == 0 else "root or you"
    try:
        return check_trusted_path(trust.path, directory=trust.format == GPG)
    except FileNotFoundError as exc:
        kind = "keyring directory" if trust.format == GPG else "allowed signers file"
        raise ConfigError(
            f"{trust.where}: {trust.path} does not exist (the {kind} signed commits "
            "are checked against; see docs/how-to/sign-commits.md)"
        ) from exc
    except UntrustedFile as exc:
        raise ConfigError(
            f"{trust.where}: {exc}; it must be owned by {owner} and writable by nobody "
            "else, like every folder above it"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{trust.where}: cannot read {trust.path}: {exc.strerror}") from exc


class SignatureRefused(CronsyncError):
    """The commit's signature does not verify against the host's trust set (a sync would
    refuse it; exit 1, as a refused sync)."""


def _environment(gnupg_home: str) -> dict[str, str]:
    """git's environment for a check: no user or system config, no agents, GNUPGHOME."""
    return {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "SSH_AUTH_SOCK": "",
        "GPG_AGENT_INFO": "",
        "GNUPGHOME": gnupg_home,
    }


def _options(trust: TrustSet, real: str) -> tuple[str, ...]:
    """``-c`` options that pin the programs and the trust set over the repository's
    config: the required format's program, ``/bin/false`` for every other one."""
    options = [
        f"{setting}={_PROGRAMS[fmt][0] if fmt == trust.format else _REFUSE}"
        for fmt, setting in _PROGRAM_SETTINGS.items()
    ]
    options += ["gpg.minTrustLevel=undefined", "log.showSignature=false"]
    if trust.format == SSH:
        options.append(f"gpg.ssh.allowedSignersFile={real}")
    return tuple(arg for option in options for arg in ("-c", option))


@contextmanager
def _gnupg_home(trust: TrustSet, real: str) -> Iterator[str]:
    """GNUPGHOME of a check: the keyring for gpg; for ssh an empty private folder,
    removed afterwards (gpg is never run then, and never with root's keyring)."""
    if trust.format == GPG:
        yield real
        return
    with tempfile.TemporaryDirectory(prefix="cronsync-nognupg-") as empty:
        yield empty


class _Git:
    """Runs git for one check: in ``cwd`` (pinned to a checkout by ``pinned``), with the
    check's environment and timeout."""

    def __init__(
        self,
        cwd: Path,
        trust: TrustSet,
        real: str,
        timeout: float,
        pinned: dict[str, str],
        gnupg_home: str,
    ) -> None:
        self.cwd, self.timeout = cwd, timeout
        self.env = {**pinned, **_environment(gnupg_home)}
        self.options = _options(trust, real)

    def __call__(self, *args: str) -> str:
        """Run ``git ARGS``; return its stdout (see :func:`run_git`)."""
        return run_git(self.cwd, *self.options, *args, timeout=self.timeout, env=self.env)


def _git_check(git: _Git, commit: str) -> GitCheck:
    """Ask git for ``%G?``, ``%GK``, ``%GS`` and the outcome of ``verify-commit --raw``.

    Raises:
        GitFailed: ``git log`` failed or a command timed out (``verify-commit``'s
            failure is otherwise its answer).
    """
    answer = git("log", "-1", _FORMAT, commit, "--") + "\n\n"
    letter, key, signer = answer.split("\n")[:3]
    try:
        git("verify-commit", "--raw", commit)
        status, raw = 0, ""
    except GitFailed as exc:
        if "did not complete in" in exc.stderr:  # killed after the timeout: no answer
            raise
        status, raw = exc.status, exc.stderr
    return GitCheck(status, raw, letter.strip(), key, signer)


def _verify(git: _Git, commit: str, trust: TrustSet) -> Verdict:
    """Check ``commit`` against ``trust`` (already checked by :func:`check_trust_set`).

    Raises:
        SourceError: git cannot read the commit or failed while checking it.
    """
    try:
        object_format = git("rev-parse", "--show-object-format")
        if object_format not in OBJECT_FORMATS:
            raise SourceError(
                f"cannot check the signature of commit {commit[:12]}: unknown object "
                f"format {object_format!r}"
            )
        found = signature_format(git("cat-file", "commit", commit), object_format)
        check = _git_check(git, commit) if found == trust.format else None
    except GitFailed as exc:
        raise SourceError(
            f"cannot check the signature of commit {commit[:12]}: "
            f"{failure_reason(exc.stderr, git.timeout)}"
        ) from exc
    return judge(trust.format, found, check)


def verify_commit(
    checkout: Path, commit: str, trust: TrustSet, timeout: float = DEFAULT_TIMEOUT
) -> Verdict:
    """Check the signature of ``commit`` (the tip a sync would install) in the checkout.

    Args:
        checkout: the agent's checkout (git is pinned to it).
        commit: the full sha that would be installed.
        trust: the host's trust set.
        timeout: seconds each git command may take.

    Returns:
        The verdict; ``ok`` only for a good signature of the required format by a key of
        the trust set.

    Raises:
        ConfigError: the trust set or its program is not usable.
        SourceError: ``commit`` looks like an option, or git cannot read it.
    """
    check_rev(checkout, commit)
    real = check_trust_set(trust)
    with _gnupg_home(trust, real) as home:
        git = _Git(checkout, trust, real, timeout, in_checkout(checkout), home)
        return _verify(git, commit, trust)


def verify_head(
    repo: Path, trust: TrustSet, timeout: float = DEFAULT_TIMEOUT
) -> tuple[str, Verdict]:
    """Check the signature of ``HEAD`` of the git repository holding the folder ``repo``
    (``cronsync validate --require-signed`` in the repository's CI).

    Returns:
        (HEAD's sha, the verdict).

    Raises:
        ConfigError: the trust set or its program is not usable.
        SourceError: ``repo`` is not in a git repository or it has no commit.
    """
    real = check_trust_set(trust)
    with _gnupg_home(trust, real) as home:
        git = _Git(repo, trust, real, timeout, {}, home)
        try:
            head = git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        except GitFailed as exc:
            reason = failure_reason(exc.stderr) if exc.stderr.strip() else "no commit yet"
            raise SourceError(f"{repo}: cannot read HEAD: {reason}") from exc
        return head, _verify(git, head, trust)


def verdict_line(commit: str, verdict: Verdict, installed: bool = False) -> Optional[str]:
    """The refusal a sync records for ``commit`` (None when the verdict is ok).

    Args:
        commit: the refused commit.
        verdict: its verdict.
        installed: ``commit`` is the installed one (``require_signed`` or the trust set
            changed since): it stays, and the line says so.
    """
    if verdict.ok:
        return None
    if installed:
        return (
            f"installed commit {commit[:12]} refused: {verdict.reason}; it stays installed "
            "until a commit with a good signature replaces it"
        )
    return f"commit {commit[:12]} refused: {verdict.reason}; the last-known-good stays installed"


def refuse_unsigned(
    checkout: Path, commit: str, trust: Optional[TrustSet], timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Check ``commit`` before anything is done with its files (``cronsync plan``).

    Args:
        checkout: the agent's checkout holding ``commit``.
        commit: the fetched tip.
        trust: the host's trust set; None when no signature is required (nothing checked).
        timeout: seconds each git command may take.

    Raises:
        SignatureRefused: the signature does not verify (the line a sync would record).
        ConfigError: the trust set or its program is not usable.
        SourceError: git cannot read the commit.
    """
    if trust is None:
        return
    refusal = verdict_line(commit, verify_commit(checkout, commit, trust, timeout))
    if refusal is not None:
        raise SignatureRefused(refusal)
