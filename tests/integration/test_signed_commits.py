"""``[repo] require_signed``: a sync installs the branch tip only when its signature
verifies against the host's trust set, and ``cronsync validate --require-signed`` checks
HEAD the same way in a repository's CI.

Real keys sign real commits: ed25519 keys made by ``ssh-keygen`` and throwaway gpg keys
in short-lived GNUPGHOMEs (short paths: gpg-agent's socket lives there), the agents
stopped with ``gpgconf --kill all`` at the end. Every refusal keeps the last-known-good
and says why in one line: in the sync's output, ``status``, the state file and the
``SyncFailed`` metric.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from cronsync.core.errors import ConfigError
from cronsync.host.config import parse_config
from helpers.sandbox import GIT_ENV, Sandbox, agent_toml, git

HAS_SSH_KEYGEN = shutil.which("ssh-keygen") is not None
HAS_GPG = shutil.which("gpg") is not None and shutil.which("gpgconf") is not None
needs_ssh = pytest.mark.skipif(
    not HAS_SSH_KEYGEN, reason="ssh-keygen is not installed (scripts/test installs openssh-client)"
)
needs_gpg = pytest.mark.skipif(
    not HAS_GPG, reason="gpg is not installed (scripts/test installs gnupg as root)"
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")

PRINCIPAL = "alice@example.com"
ALLOWED_SIGNERS = "etc/cronsync/allowed_signers"  # below the sandbox's root
GPG_HOME = "etc/cronsync/gnupg"
REGION = "eu-west-1"


def run(argv: list[str], env: Optional[dict[str, str]] = None, **kw: Any) -> str:
    """Run a tool to completion (checked, with a timeout); return its stdout."""
    done = subprocess.run(
        argv,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **GIT_ENV, **(env or {})},
        **kw,
    )
    return done.stdout


# --- keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshKey:
    """An ed25519 key pair made by ssh-keygen."""

    private: Path

    @property
    def public(self) -> str:
        """``ssh-ed25519 AAAA...`` without the comment."""
        return " ".join(Path(f"{self.private}.pub").read_text().split()[:2])


def ssh_key(folder: Path, name: str) -> SshKey:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)])
    return SshKey(path)


class GpgHomes:
    """Short-lived GNUPGHOMEs for signers (short paths: gpg-agent's socket is in them)."""

    def __init__(self) -> None:
        self.homes: list[Path] = []

    def new_key(self, uid: str, faked_time: Optional[str] = None, expire: str = "never") -> Path:
        """A home holding one fresh ed25519 signing key of ``uid`` (no passphrase); with
        ``faked_time``, made at that time (e.g. long expired)."""
        home = Path(tempfile.mkdtemp(prefix="csg", dir="/tmp"))
        self.homes.append(home)
        faked = ["--faked-system-time", faked_time] if faked_time else []
        argv = ["gpg", "--batch", "--quiet", "--passphrase", "", *faked, "--quick-gen-key"]
        run([*argv, uid, "ed25519", "sign", expire], env={"GNUPGHOME": str(home)})
        return home

    def stop(self) -> None:
        """Stop every agent these homes started, then remove the homes."""
        for home in self.homes:
            subprocess.run(
                ["gpgconf", "--kill", "all"],
                env={**os.environ, "GNUPGHOME": str(home)},
                capture_output=True,
                timeout=60,
            )
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def gpg_homes() -> Iterator[GpgHomes]:
    homes = GpgHomes()
    try:
        yield homes
    finally:
        homes.stop()


def fingerprint(home: Path) -> str:
    out = run(["gpg", "--with-colons", "--list-keys"], env={"GNUPGHOME": str(home)})
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def trust_gpg_key(signer_home: Path, keyring: Path) -> str:
    """Import the signer's public key into the host's keyring; return its fingerprint."""
    keyring.mkdir(parents=True, exist_ok=True, mode=0o700)
    public = subprocess.run(
        ["gpg", "--export", "--armor"],
        env={**os.environ, "GNUPGHOME": str(signer_home)},
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    # --no-autostart: importing public keys needs no agent (whose socket path in the
    # sandbox would be too long); gpg then exits 2 for the missing agent.
    subprocess.run(
        ["gpg", "--batch", "--quiet", "--no-autostart", "--import"],
        input=public,
        env={**os.environ, "GNUPGHOME": str(keyring)},
        capture_output=True,
        timeout=60,
    )
    fpr = fingerprint(signer_home)
    listed = run(["gpg", "--with-colons", "--list-keys"], env={"GNUPGHOME": str(keyring)})
    assert fpr in listed, listed
    return fpr


# --- commits ----------------------------------------------------------------------------


def commit(
    sandbox: Sandbox, message: str, *signing: str, env: Optional[dict[str, str]] = None
) -> str:
    """Commit a change of the work tree with ``signing`` options (none: unsigned)."""
    work = sandbox.upstream.work
    (work / "CHANGES").write_text(f"{message}\n")
    run(["git", "add", "--all"], cwd=work)
    sign = ["-S"] if signing else ["--no-gpg-sign"]
    run(["git", *signing, "commit", "--quiet", *sign, "-m", message], cwd=work, env=env)
    return sandbox.upstream.head()


def ssh_signed(sandbox: Sandbox, key: SshKey, message: str) -> str:
    return commit(sandbox, message, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key.private}")


def gpg_signed(sandbox: Sandbox, home: Path, message: str, program: str = "gpg") -> str:
    options = ("-c", f"user.signingkey={fingerprint(home)}", "-c", f"gpg.program={program}")
    return commit(sandbox, message, *options, env={"GNUPGHOME": str(home)})


def push(sandbox: Sandbox, force: bool = False) -> None:
    sandbox.upstream.push(force=force)


# --- the host ---------------------------------------------------------------------------


def write_signed_config(sandbox: Sandbox, repo_lines: str, extra: str = "") -> None:
    """agent.toml of the sandbox with ``repo_lines`` added to its ``[repo]`` table."""
    text = agent_toml(str(sandbox.upstream.bare), sandbox.root, extra)
    text = text.replace('branch = "main"\n', f'branch = "main"\n{repo_lines}\n', 1)
    sandbox.config_path.parent.mkdir(parents=True, exist_ok=True)
    sandbox.config_path.write_text(text)


def allow_ssh(sandbox: Sandbox, *keys: SshKey, options: str = 'namespaces="git"') -> Path:
    """Write the host's allowed_signers file (mode 0644) naming ``keys`` as alice."""
    path = sandbox.root / ALLOWED_SIGNERS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{PRINCIPAL} {options} {key.public}\n" for key in keys))
    path.chmod(0o644)
    return path


@dataclass
class SshHost:
    sandbox: Sandbox
    alice: SshKey
    mallory: SshKey
    good: str  # the signed commit installed by the fixture


@pytest.fixture
def ssh_host(sandbox: Sandbox, tmp_path: Path) -> SshHost:
    """require_signed = "ssh", alice's key allowed, a commit signed by alice installed."""
    if not HAS_SSH_KEYGEN:
        pytest.skip("ssh-keygen is not installed (scripts/test installs openssh-client)")
    keys = tmp_path / "keys"
    alice, mallory = ssh_key(keys, "alice"), ssh_key(keys, "mallory")
    allow_ssh(sandbox, alice)
    write_signed_config(sandbox, 'require_signed = "ssh"')
    good = ssh_signed(sandbox, alice, "Signed by alice")
    push(sandbox)
    outcome = sandbox.sync()
    assert outcome.record.result == "installed", outcome.record
    assert outcome.record.commit == good
    return SshHost(sandbox, alice, mallory, good)


def assert_refused(sandbox: Sandbox, good: str, bad: str, reason: str) -> dict[str, Any]:
    """Sync through the CLI: refused with ``reason``, the last-known-good untouched, the
    reason in the state file and in ``status``. Returns the state file."""
    cron_before = sandbox.cron_file.read_bytes()
    link_before = os.readlink(sandbox.current)

    done = sandbox.cli("sync")

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"refused: commit {bad[:12]} refused: {reason}"), done.stderr
    assert first.endswith("; the last-known-good stays installed"), first
    assert sandbox.cron_file.read_bytes() == cron_before
    assert os.readlink(sandbox.current) == link_before
    state = sandbox.state()
    assert state["installed"]["commit"] == good
    assert state["last_sync"]["result"] == "refused"
    assert state["last_sync"]["commit"] == bad
    assert reason in state["last_sync"]["message"]
    status = sandbox.cli("status")
    assert status.returncode == 1, (status.stdout, status.stderr)  # degraded
    assert any(
        line.startswith("last sync:") and f"refused: commit {bad[:12]} refused: {reason}" in line
        for line in status.stdout.splitlines()
    ), status.stdout
    return state


# --- ssh ----------------------------------------------------------------------------------


def test_a_tip_signed_by_an_allowed_ssh_key_is_installed(ssh_host: SshHost) -> None:
    state = ssh_host.sandbox.state()
    assert state["installed"]["commit"] == ssh_host.good
    notes = state["last_sync"]["notes"]
    assert any(
        note.startswith(f"signature: good ssh signature by {PRINCIPAL} (key SHA256:")
        for note in notes
    ), notes


def test_an_unsigned_tip_is_refused(ssh_host: SshHost) -> None:
    bad = commit(ssh_host.sandbox, "Not signed")
    push(ssh_host.sandbox)
    assert_refused(ssh_host.sandbox, ssh_host.good, bad, "no signature")


def test_a_key_not_in_allowed_signers_is_refused_though_it_claims_the_name(
    ssh_host: SshHost,
) -> None:
    # mallory commits as the same committer, alice's name in the signing key's comment
    bad = ssh_signed(ssh_host.sandbox, ssh_host.mallory, "Signed by someone else")
    push(ssh_host.sandbox)
    fpr = run(["ssh-keygen", "-l", "-f", f"{ssh_host.mallory.private}.pub"]).split()[1]
    assert_refused(
        ssh_host.sandbox,
        ssh_host.good,
        bad,
        f"unknown key {fpr} (not in the allowed signers file)",
    )


def test_a_tampered_commit_is_refused_as_a_bad_signature(ssh_host: SshHost) -> None:
    sandbox = ssh_host.sandbox
    work = sandbox.upstream.work
    signed = ssh_signed(sandbox, ssh_host.alice, "Harmless change")
    raw = git(work, "cat-file", "commit", signed)
    assert "-----BEGIN SSH SIGNATURE-----" in raw
    tampered_text = raw.replace("Harmless change", "Evil change") + "\n"
    tampered = run(
        ["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=work, input=tampered_text
    ).strip()
    git(work, "update-ref", "refs/heads/main", tampered)
    push(sandbox)
    assert_refused(sandbox, ssh_host.good, tampered, "bad signature")


def test_an_expired_ssh_key_is_refused(ssh_host: SshHost) -> None:
    allow_ssh(ssh_host.sandbox, ssh_host.alice, options='namespaces="git",valid-before="20200101"')
    bad = ssh_signed(ssh_host.sandbox, ssh_host.alice, "Signed with a retired key")
    push(ssh_host.sandbox)
    assert_refused(ssh_host.sandbox, ssh_host.good, bad, "expired key SHA256:")


def test_a_force_pushed_unsigned_commit_on_signed_history_is_refused(ssh_host: SshHost) -> None:
    sandbox = ssh_host.sandbox
    second = ssh_signed(sandbox, ssh_host.alice, "Signed again")
    push(sandbox)
    assert sandbox.sync().record.commit == second
    git(sandbox.upstream.work, "reset", "--quiet", "--hard", ssh_host.good)
    bad = commit(sandbox, "Unsigned, rewriting the branch")
    push(sandbox, force=True)

    state = assert_refused(sandbox, second, bad, "no signature")

    assert any("rewritten (force-push)" in note for note in state["last_sync"]["notes"])
    good_again = ssh_signed(sandbox, ssh_host.alice, "Signed on top of the unsigned one")
    push(sandbox)
    outcome = sandbox.sync()
    assert outcome.record.result == "installed", outcome.record  # only the tip counts
    assert sandbox.state()["installed"]["commit"] == good_again


@needs_gpg
def test_a_gpg_signature_is_refused_when_ssh_is_required(
    ssh_host: SshHost, gpg_homes: GpgHomes
) -> None:
    home = gpg_homes.new_key(f"Alice <{PRINCIPAL}>")
    bad = gpg_signed(ssh_host.sandbox, home, "Signed with gpg")
    push(ssh_host.sandbox)
    assert_refused(
        ssh_host.sandbox, ssh_host.good, bad, "signed with gpg, but ssh signatures are required"
    )


FAKE_SSH_HEADER = (
    "-----BEGIN SSH SIGNATURE-----\n U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAg\n"
    " -----END SSH SIGNATURE-----"
)


def with_header(sandbox: Sandbox, signed: str, header: str, before: str) -> str:
    """Write a copy of commit ``signed`` with ``header`` (a name and its value) put in
    front of its ``before`` header, by hand (``git hash-object``); return the new sha."""
    work = sandbox.upstream.work
    raw = git(work, "cat-file", "commit", signed) + "\n"
    head, _, message = raw.partition("\n\n")
    lines = head.split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith(f"{before} "))
    lines.insert(at, header)
    text = "\n".join(lines) + "\n\n" + message
    forged = run(
        ["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=work, input=text
    ).strip()
    git(work, "update-ref", "refs/heads/main", forged)
    return forged


@needs_gpg
def test_a_gpg_signature_behind_a_fake_ssh_header_is_refused(
    ssh_host: SshHost, gpg_homes: GpgHomes
) -> None:
    """git (SHA-1 repository) checks only ``gpgsig``, and picks gpg from its armour: a fake
    ssh ``gpgsig-sha256`` in front of it must not make it pass as an ssh signature, even
    when the keyring gpg finds by default (here $GNUPGHOME) holds the signer's key."""
    sandbox = ssh_host.sandbox
    home = gpg_homes.new_key(f"Mallory <{PRINCIPAL}>")
    signed = gpg_signed(sandbox, home, "Signed with gpg, dressed as ssh")
    forged = with_header(sandbox, signed, f"gpgsig-sha256 {FAKE_SSH_HEADER}", "gpgsig")
    verified = ["git", "verify-commit", forged]  # git itself: a good gpg signature
    run(verified, cwd=sandbox.upstream.work, env={"GNUPGHOME": str(home)})
    push(sandbox, force=True)
    cron_before = sandbox.cron_file.read_bytes()

    done = sandbox.cli("sync", env={"GNUPGHOME": str(home)})

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"commit {forged[:12]} refused: more than one signature header" in done.stderr
    assert sandbox.cron_file.read_bytes() == cron_before
    assert sandbox.state()["installed"]["commit"] == ssh_host.good


def test_an_ssh_header_of_the_other_object_format_does_not_count(ssh_host: SshHost) -> None:
    """A SHA-1 repository's signature is ``gpgsig``: a lone ``gpgsig-sha256`` is no
    signature to git, nor to cronsync."""
    sandbox = ssh_host.sandbox
    unsigned = commit(sandbox, "Not signed")
    lone = with_header(sandbox, unsigned, f"gpgsig-sha256 {FAKE_SSH_HEADER}", "author")
    push(sandbox, force=True)
    assert_refused(sandbox, ssh_host.good, lone, "no signature")


# --- the installed commit is checked again ------------------------------------------------


def test_removing_the_signers_key_refuses_the_installed_commit(ssh_host: SshHost) -> None:
    """A compromised key taken out of allowed_signers: the next sync, with nothing new
    pushed, refuses the installed commit instead of calling it up to date."""
    sandbox = ssh_host.sandbox
    allow_ssh(sandbox, ssh_host.mallory)

    done = sandbox.cli("sync")

    assert done.returncode == 1, (done.stdout, done.stderr)
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"refused: installed commit {ssh_host.good[:12]} refused: unknown key")
    assert "it stays installed until a commit with a good signature replaces it" in first
    state = sandbox.state()
    assert state["last_sync"]["result"] == "refused"
    assert state["installed"]["commit"] == ssh_host.good
    assert sandbox.cli("status").returncode == 1  # degraded


def test_turning_on_require_signed_refuses_an_unsigned_installed_commit(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    if not HAS_SSH_KEYGEN:
        pytest.skip("ssh-keygen is not installed (scripts/test installs openssh-client)")
    assert sandbox.sync().record.result == "installed"  # the template's unsigned commit
    unsigned = sandbox.upstream.head()
    allow_ssh(sandbox, ssh_key(tmp_path / "keys", "alice"))
    write_signed_config(sandbox, 'require_signed = "ssh"')

    done = sandbox.cli("sync")

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"installed commit {unsigned[:12]} refused: no signature" in done.stderr
    assert sandbox.state()["last_sync"]["result"] == "refused"


def test_an_allowed_signers_file_others_may_write_is_refused(ssh_host: SshHost) -> None:
    sandbox = ssh_host.sandbox
    path = sandbox.root / ALLOWED_SIGNERS
    path.chmod(0o666)
    ssh_signed(sandbox, ssh_host.alice, "Signed, but the trust set is open")
    push(sandbox)

    done = sandbox.cli("sync")

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{sandbox.config_path}: repo.allowed_signers: {path} is writable by others" in (
        done.stderr
    )
    assert "must be owned by root" in done.stderr
    state = sandbox.state()
    assert state["installed"]["commit"] == ssh_host.good
    assert state["last_sync"]["result"] == "failed"


def test_a_folder_others_may_write_above_the_trust_set_is_refused(ssh_host: SshHost) -> None:
    sandbox = ssh_host.sandbox
    folder = (sandbox.root / ALLOWED_SIGNERS).parent
    folder.chmod(0o777)  # anyone could put another allowed_signers file in its place
    try:
        ssh_signed(sandbox, ssh_host.alice, "Signed, but the trust set's folder is open")
        push(sandbox)

        done = sandbox.cli("sync")
    finally:
        folder.chmod(0o755)

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"repo.allowed_signers: {folder} is writable by others (mode 0777)" in done.stderr
    assert sandbox.state()["installed"]["commit"] == ssh_host.good


@needs_root
def test_an_allowed_signers_file_owned_by_another_user_is_refused(ssh_host: SshHost) -> None:
    sandbox = ssh_host.sandbox
    path = sandbox.root / ALLOWED_SIGNERS
    os.chown(path, 65534, 65534)
    ssh_signed(sandbox, ssh_host.alice, "Signed, but the trust set is someone else's")
    push(sandbox)

    done = sandbox.cli("sync")

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"repo.allowed_signers: {path} belongs to uid 65534, not root" in done.stderr
    assert sandbox.state()["installed"]["commit"] == ssh_host.good


def test_a_missing_allowed_signers_file_is_named(ssh_host: SshHost) -> None:
    sandbox = ssh_host.sandbox
    (sandbox.root / ALLOWED_SIGNERS).unlink()
    ssh_signed(sandbox, ssh_host.alice, "Signed, no trust set")
    push(sandbox)

    done = sandbox.cli("sync")

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"{sandbox.root / ALLOWED_SIGNERS} does not exist" in done.stderr
    assert sandbox.state()["installed"]["commit"] == ssh_host.good


def test_the_users_git_config_cannot_swap_the_trust_set(ssh_host: SshHost) -> None:
    """A ~/.gitconfig naming another allowed signers file (one that lets mallory in) is not
    read by the check."""
    sandbox = ssh_host.sandbox
    home = sandbox.base / "home"
    home.mkdir()
    loose = home / "loose_signers"
    loose.write_text(f"{PRINCIPAL} {ssh_host.mallory.public}\n")
    (home / ".gitconfig").write_text(f'[gpg "ssh"]\n\tallowedSignersFile = {loose}\n')
    bad = ssh_signed(sandbox, ssh_host.mallory, "Signed by mallory")
    push(sandbox)

    env = {"HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig")}
    done = sandbox.cli("sync", env=env)

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"commit {bad[:12]} refused: unknown key" in done.stderr
    assert sandbox.state()["installed"]["commit"] == ssh_host.good


def test_the_refusal_counts_in_the_sync_failed_metric(ssh_host: SshHost, endpoint: str) -> None:
    import boto3

    sandbox = ssh_host.sandbox
    credentials = sandbox.base / "aws-credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    credentials.chmod(0o600)
    aws = (
        "[metrics]\ncloudwatch = true\n"
        f'[aws]\nregion = "{REGION}"\nendpoint_url = "{endpoint}"\n'
        f"credentials_file = {json.dumps(str(credentials))}\n"
    )
    write_signed_config(sandbox, 'require_signed = "ssh"', aws)
    commit(sandbox, "Not signed")
    push(sandbox)

    done = sandbox.cli("sync")

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "no signature" in done.stderr
    client = boto3.session.Session().client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    now = time.time()
    sums = {}
    for name in ("SyncFailed", "SyncSucceeded"):
        points = client.get_metric_statistics(
            Namespace="Cronsync",
            MetricName=name,
            Dimensions=[{"Name": "Host", "Value": "batch-1"}],
            StartTime=now - 3600,
            EndTime=now + 600,
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        sums[name] = sum(point["Sum"] for point in points)
    assert sums == {"SyncFailed": 1.0, "SyncSucceeded": 0.0}


# --- cronsync plan -------------------------------------------------------------------------


def test_plan_refuses_an_unsigned_tip_before_building_it(ssh_host: SshHost) -> None:
    """plan fetches as root: an unsigned tip is refused before it is exported or built
    (no bash -n, shellcheck or compile of its files), in one line, with sync's exit code."""
    sandbox = ssh_host.sandbox
    sandbox.upstream.write("scripts/new.sh", "#!/bin/sh\necho new\n", 0o755)
    bad = commit(sandbox, "Not signed, adds a script")
    push(sandbox)

    done = sandbox.cli("plan")

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"cronsync: commit {bad[:12]} refused: no signature; the last-known-good stays installed"
    ]
    as_json = sandbox.cli("plan", "--json")
    assert as_json.returncode == 1
    assert "refused: no signature" in json.loads(as_json.stdout)["error"]


def test_plan_of_a_signed_tip_shows_its_changes(ssh_host: SshHost) -> None:
    sandbox = ssh_host.sandbox
    sandbox.upstream.remove("jobs/nightly-aggregate.toml")
    ssh_signed(sandbox, ssh_host.alice, "Signed, removes a job")
    push(sandbox)

    done = sandbox.cli("plan")

    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "nightly-aggregate" in done.stdout


# --- gpg ----------------------------------------------------------------------------------


@dataclass
class GpgHost:
    sandbox: Sandbox
    alice: Path  # the signer's GNUPGHOME
    good: str


@pytest.fixture
def gpg_host(sandbox: Sandbox, gpg_homes: GpgHomes) -> GpgHost:
    """require_signed = "gpg", alice's public key in the host's keyring, a commit signed by
    alice installed."""
    if not HAS_GPG:
        pytest.skip("gpg is not installed (scripts/test installs gnupg as root)")
    alice = gpg_homes.new_key(f"Alice <{PRINCIPAL}>")
    trust_gpg_key(alice, sandbox.root / GPG_HOME)
    write_signed_config(sandbox, 'require_signed = "gpg"')
    good = gpg_signed(sandbox, alice, "Signed by alice with gpg")
    push(sandbox)
    outcome = sandbox.sync()
    assert outcome.record.result == "installed", outcome.record
    return GpgHost(sandbox, alice, good)


def test_a_tip_signed_by_a_key_of_the_keyring_is_installed(gpg_host: GpgHost) -> None:
    state = gpg_host.sandbox.state()
    assert state["installed"]["commit"] == gpg_host.good
    assert any(
        note.startswith(f"signature: good gpg signature by Alice <{PRINCIPAL}>")
        for note in state["last_sync"]["notes"]
    ), state["last_sync"]["notes"]


def test_an_unsigned_tip_is_refused_with_gpg(gpg_host: GpgHost) -> None:
    bad = commit(gpg_host.sandbox, "Not signed")
    push(gpg_host.sandbox)
    assert_refused(gpg_host.sandbox, gpg_host.good, bad, "no signature")


def test_another_gpg_key_claiming_the_same_name_is_refused(
    gpg_host: GpgHost, gpg_homes: GpgHomes
) -> None:
    impostor = gpg_homes.new_key(f"Alice <{PRINCIPAL}>")
    bad = gpg_signed(gpg_host.sandbox, impostor, "Signed by an impostor")
    push(gpg_host.sandbox)
    key_id = fingerprint(impostor)[-16:]
    assert_refused(
        gpg_host.sandbox, gpg_host.good, bad, f"unknown key {key_id} (not in the keyring)"
    )


def test_a_tampered_gpg_commit_is_refused_as_a_bad_signature(gpg_host: GpgHost) -> None:
    sandbox = gpg_host.sandbox
    work = sandbox.upstream.work
    signed = gpg_signed(sandbox, gpg_host.alice, "Harmless change")
    raw = git(work, "cat-file", "commit", signed)
    tampered_text = raw.replace("Harmless change", "Evil change") + "\n"
    tampered = run(
        ["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=work, input=tampered_text
    ).strip()
    git(work, "update-ref", "refs/heads/main", tampered)
    push(sandbox)
    assert_refused(sandbox, gpg_host.good, tampered, "bad signature")


def test_an_expired_gpg_key_is_refused(
    gpg_host: GpgHost, gpg_homes: GpgHomes, tmp_path: Path
) -> None:
    # made in 2020 to expire a day later, and used then (gpg's faked clock)
    old = gpg_homes.new_key("Old <old@example.com>", faked_time="20200101T000000", expire="1d")
    fpr = trust_gpg_key(old, gpg_host.sandbox.root / GPG_HOME)
    program = tmp_path / "gpg-in-2020"
    program.write_text('#!/bin/sh\nexec gpg --faked-system-time 20200101T010000 "$@"\n')
    program.chmod(0o755)
    bad = gpg_signed(gpg_host.sandbox, old, "Signed with a key that has expired", str(program))
    push(gpg_host.sandbox)
    assert_refused(gpg_host.sandbox, gpg_host.good, bad, f"expired key {fpr[-16:]}")


def test_an_ssh_signature_is_refused_when_gpg_is_required(
    gpg_host: GpgHost, tmp_path: Path
) -> None:
    if not HAS_SSH_KEYGEN:
        pytest.skip("ssh-keygen is not installed (scripts/test installs openssh-client)")
    key = ssh_key(tmp_path / "keys", "alice")
    bad = ssh_signed(gpg_host.sandbox, key, "Signed with ssh")
    push(gpg_host.sandbox)
    assert_refused(
        gpg_host.sandbox, gpg_host.good, bad, "signed with ssh, but gpg signatures are required"
    )


def test_a_keyring_others_may_write_is_refused(gpg_host: GpgHost) -> None:
    sandbox = gpg_host.sandbox
    keyring = sandbox.root / GPG_HOME
    (keyring / "pubring.kbx").chmod(0o666)
    gpg_signed(sandbox, gpg_host.alice, "Signed, but the keyring is open")
    push(sandbox)

    done = sandbox.cli("sync")

    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"repo.gpg_home: {keyring}/pubring.kbx is writable by others" in done.stderr
    assert sandbox.state()["installed"]["commit"] == gpg_host.good


# --- agent.toml -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (
            'allowed_signers = "/etc/cronsync/allowed_signers"',
            'repo.allowed_signers: set, but repo.require_signed is not "ssh"',
        ),
        (
            'require_signed = "ssh"\ngpg_home = "/etc/cronsync/gnupg"',
            'repo.gpg_home: set, but repo.require_signed is not "gpg"',
        ),
        (
            'require_signed = "ssh"\nallowed_signers = "allowed_signers"',
            "repo.allowed_signers: 'allowed_signers' is not an absolute path",
        ),
        ('require_signed = "x509"', "repo.require_signed"),
    ],
)
def test_signing_keys_that_do_not_fit_are_config_errors(
    tmp_path: Path, lines: str, words: str
) -> None:
    text = agent_toml("/srv/jobs.git", tmp_path).replace(
        'branch = "main"\n', f'branch = "main"\n{lines}\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(tmp_path / "agent.toml", text)
    assert words in caught.value.message
    assert "\n" not in caught.value.message


def test_the_trust_set_hangs_off_paths_root(tmp_path: Path) -> None:
    text = agent_toml("/srv/jobs.git", tmp_path).replace(
        'branch = "main"\n', 'branch = "main"\nrequire_signed = "gpg"\n'
    )
    config = parse_config(tmp_path / "agent.toml", text)
    assert config.signing is not None
    assert (config.signing.format, config.signing.path) == ("gpg", str(tmp_path / GPG_HOME))
    assert parse_config(tmp_path / "agent.toml", agent_toml("/srv/j.git", tmp_path)).signing is None


# --- cronsync validate --require-signed ---------------------------------------------------


@needs_ssh
def test_validate_require_signed_exit_codes(sandbox: Sandbox, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    alice, mallory = ssh_key(keys, "alice"), ssh_key(keys, "mallory")
    signers = allow_ssh(sandbox, alice)
    work = str(sandbox.upstream.work)

    def validate(*args: str) -> subprocess.CompletedProcess[str]:
        return sandbox.cli("validate", work, "--no-lint", *args)

    ssh_options = ("--require-signed", "ssh", "--allowed-signers", str(signers))
    unsigned = validate(*ssh_options)  # the template's commit carries no signature
    assert unsigned.returncode == 1, (unsigned.stdout, unsigned.stderr)
    head = sandbox.upstream.head()
    assert f"refused: signature of HEAD {head[:12]}: no signature" in unsigned.stdout
    assert unsigned.stderr.startswith("FAILED: ")

    ssh_signed(sandbox, alice, "Signed by alice")
    good = validate(*ssh_options)
    assert good.returncode == 0, (good.stdout, good.stderr)
    assert f"ok: signature of HEAD {sandbox.upstream.head()[:12]}: good ssh signature" in (
        good.stdout
    )
    as_json = validate(*ssh_options, "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["ok"] is True
    assert document["signature"]["ok"] is True
    assert document["signature"]["commit"] == sandbox.upstream.head()

    ssh_signed(sandbox, mallory, "Signed by mallory")
    unknown = validate(*ssh_options, "--json")
    assert unknown.returncode == 1, unknown.stderr
    assert json.loads(unknown.stdout)["signature"]["reason"].startswith("unknown key SHA256:")

    for args, words in [
        (("--require-signed", "ssh"), "--require-signed ssh needs --allowed-signers FILE"),
        (("--require-signed", "gpg"), "--require-signed gpg needs --gpg-home DIR"),
        (("--allowed-signers", str(signers)), "--allowed-signers needs --require-signed ssh"),
        ((*ssh_options[:2], "--gpg-home", str(keys)), "--gpg-home needs --require-signed gpg"),
        (
            ("--require-signed", "ssh", "--allowed-signers", str(keys / "nowhere")),
            f"--allowed-signers: {keys / 'nowhere'} does not exist",
        ),
    ]:
        done = validate(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr

    plain = tmp_path / "not-a-repository"
    shutil.copytree(work, plain, ignore=shutil.ignore_patterns(".git"))
    outside = sandbox.cli(
        "validate",
        str(plain),
        "--no-lint",
        *ssh_options,
        env={"GIT_CEILING_DIRECTORIES": str(tmp_path)},
    )
    assert outside.returncode == 2, (outside.stdout, outside.stderr)
    assert f"{plain}: cannot read HEAD" in outside.stderr


@needs_gpg
def test_validate_require_signed_gpg(sandbox: Sandbox, gpg_homes: GpgHomes) -> None:
    alice = gpg_homes.new_key(f"Alice <{PRINCIPAL}>")
    keyring = sandbox.base / "ci-keyring"
    trust_gpg_key(alice, keyring)
    gpg_signed(sandbox, alice, "Signed by alice with gpg")
    options = ("--require-signed", "gpg", "--gpg-home", str(keyring))

    done = sandbox.cli("validate", str(sandbox.upstream.work), "--no-lint", *options)

    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "good gpg signature by Alice" in done.stdout
    commit(sandbox, "Not signed")
    done = sandbox.cli("validate", str(sandbox.upstream.work), "--no-lint", *options)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert ": no signature" in done.stdout


@needs_ssh
def test_validate_require_signed_in_a_sha256_repository(tmp_path: Path) -> None:
    """A SHA-256 repository's signature header is ``gpgsig-sha256``: a good one passes; a
    ``gpgsig`` next to it (which git there does not check) makes the commit refused."""
    from cronsync.core.signing import TrustSet
    from cronsync.repo.signature import verify_head

    alice = ssh_key(tmp_path / "keys", "alice")
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"{PRINCIPAL} {alice.public}\n")
    repo = tmp_path / "repo"
    run(["git", "init", "--quiet", "--object-format=sha256", "-b", "main", str(repo)])
    (repo / "README").write_text("jobs\n")
    run(["git", "add", "README"], cwd=repo)
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={alice.private}"]
    run(["git", *sign, "commit", "--quiet", "-S", "-m", "Signed"], cwd=repo)
    trust = TrustSet("ssh", str(signers), "--allowed-signers")

    head, verdict = verify_head(repo, trust)

    assert len(head) == 64
    assert "\ngpgsig-sha256 -----BEGIN SSH SIGNATURE-----" in git(repo, "cat-file", "commit", head)
    assert verdict.ok, verdict
    raw = git(repo, "cat-file", "commit", head) + "\n"
    doubled = raw.replace("\ngpgsig-sha256 ", f"\ngpgsig {FAKE_SSH_HEADER}\ngpgsig-sha256 ", 1)
    forged = run(
        ["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=repo, input=doubled
    ).strip()
    git(repo, "update-ref", "refs/heads/main", forged)
    assert verify_head(repo, trust)[1].reason.startswith("more than one signature header")
