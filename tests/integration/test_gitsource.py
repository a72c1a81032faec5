"""gitsource, gitexport and gitrun against real git repositories made in a temp dir (no mocks)."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from cronsync.core.errors import SourceError
from cronsync.repo import gitrun
from cronsync.repo.gitexport import export_commit
from cronsync.repo.gitsource import fetch_branch, is_ancestor
from cronsync.repo.tarsafe import extract_tar

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's git config away from the tests and the code under test."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def git(cwd: Path, *args: str) -> str:
    """Run the git CLI in ``cwd``; return stdout stripped."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
        env={**os.environ, **GIT_ENV}, timeout=120,
    )  # fmt: skip
    return done.stdout.strip()


class Upstream:
    """A bare "remote" and a work clone that commits and pushes to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        git(root, "init", "--quiet", "--bare", "-b", "main", str(self.bare))
        git(root, "init", "--quiet", "-b", "main", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))

    @property
    def url(self) -> str:
        return str(self.bare)

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, content in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *extra: str, branch: str = "main") -> None:
        git(self.work, "push", "--quiet", *extra, "origin", f"HEAD:refs/heads/{branch}")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    up = Upstream(tmp_path)
    up.commit({"jobs/a.toml": "schedule = '* * * * *'\n"}, "first")
    up.push()
    return up


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return tmp_path / "state" / "repo"


# --- fetch_branch ------------------------------------------------------------------


CLONE_MARKER = ".repo.cronsync-clone"
"""What fetch_branch writes next to the checkout ``repo`` it cloned."""


def test_first_clone(upstream: Upstream, checkout: Path) -> None:
    result = fetch_branch(upstream.url, "main", checkout)
    assert result.commit == git(upstream.work, "rev-parse", "HEAD")
    assert len(result.commit) == 40
    assert result.recloned is True
    assert result.previous is None
    assert (checkout / "jobs" / "a.toml").read_text() == "schedule = '* * * * *'\n"
    # no temp clone left behind; the marker says which directory cronsync cloned
    assert sorted(os.listdir(checkout.parent)) == [CLONE_MARKER, "repo"]
    info = os.stat(checkout)
    marker = (checkout.parent / CLONE_MARKER).read_text()
    assert marker == f"cronsync clone {info.st_dev} {info.st_ino}\n"


def test_clone_removes_temp_clones_left_by_an_interrupted_run(
    upstream: Upstream, checkout: Path
) -> None:
    stale = checkout.parent / ".repo.clone-12345-deadbeef"
    (stale / ".git").mkdir(parents=True)
    (checkout.parent / "unrelated").mkdir()
    fetch_branch(upstream.url, "main", checkout)
    assert sorted(os.listdir(checkout.parent)) == [CLONE_MARKER, "repo", "unrelated"]


def test_noop_fetch_returns_same_commit_and_rewrites_nothing(
    upstream: Upstream, checkout: Path
) -> None:
    first = fetch_branch(upstream.url, "main", checkout)
    job = checkout / "jobs" / "a.toml"
    before = os.stat(job)
    second = fetch_branch(upstream.url, "main", checkout)
    after = os.stat(job)
    assert second.commit == first.commit
    assert second.recloned is False
    assert second.previous == first.commit
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


def test_new_commit_arrives(upstream: Upstream, checkout: Path) -> None:
    first = fetch_branch(upstream.url, "main", checkout)
    new = upstream.commit({"jobs/b.toml": "b\n", "jobs/a.toml": "changed\n"}, "second")
    upstream.push()
    result = fetch_branch(upstream.url, "main", checkout)
    assert (result.commit, result.previous, result.recloned) == (new, first.commit, False)
    assert (checkout / "jobs" / "a.toml").read_text() == "changed\n"
    assert (checkout / "jobs" / "b.toml").read_text() == "b\n"
    assert is_ancestor(checkout, first.commit, new) is True


def test_local_edits_never_reach_an_export(
    upstream: Upstream, checkout: Path, tmp_path: Path
) -> None:
    first = fetch_branch(upstream.url, "main", checkout)
    (checkout / "jobs" / "a.toml").write_text("edited on the host\n")
    (checkout / "stray.txt").write_text("x")
    # An unchanged tip leaves the work tree alone (cheap no-op); exports come from
    # the commit, so the edit and the stray file never reach a release.
    assert fetch_branch(upstream.url, "main", checkout).commit == first.commit
    export_commit(checkout, first.commit, tmp_path / "release")
    assert (tmp_path / "release" / "jobs" / "a.toml").read_text() == "schedule = '* * * * *'\n"
    assert not (tmp_path / "release" / "stray.txt").exists()


def test_local_edits_and_stray_files_are_wiped_on_a_new_tip(
    upstream: Upstream, checkout: Path
) -> None:
    fetch_branch(upstream.url, "main", checkout)
    (checkout / "jobs" / "a.toml").write_text("edited on the host\n")
    (checkout / "stray.txt").write_text("x")
    (checkout / "jobs" / "junk").mkdir()
    (checkout / "jobs" / "junk" / "f").write_text("x")
    upstream.commit({"jobs/b.toml": "b\n"}, "second")
    upstream.push()
    fetch_branch(upstream.url, "main", checkout)
    assert (checkout / "jobs" / "a.toml").read_text() == "schedule = '* * * * *'\n"
    assert not (checkout / "stray.txt").exists()
    assert not (checkout / "jobs" / "junk").exists()


def test_force_push_to_rewritten_history(upstream: Upstream, checkout: Path) -> None:
    upstream.commit({"jobs/b.toml": "b\n"}, "second")
    upstream.push()
    old = fetch_branch(upstream.url, "main", checkout).commit
    git(upstream.work, "reset", "--quiet", "--hard", "HEAD~1")
    rewritten = upstream.commit({"jobs/c.toml": "c\n"}, "rewritten")
    upstream.push("--force")
    result = fetch_branch(upstream.url, "main", checkout)
    assert result.commit == rewritten
    assert result.previous == old
    assert not (checkout / "jobs" / "b.toml").exists()
    assert (checkout / "jobs" / "c.toml").exists()
    assert is_ancestor(checkout, old, rewritten) is False


def test_remote_unreachable(upstream: Upstream, checkout: Path) -> None:
    commit = fetch_branch(upstream.url, "main", checkout).commit
    shutil.rmtree(upstream.bare)
    with pytest.raises(SourceError) as info:
        fetch_branch(upstream.url, "main", checkout)
    assert str(info.value) == (
        f"cannot fetch branch 'main' from {upstream.url}: repository not found"
    )
    assert info.value.exit_code == 3
    # the checkout is kept as it was: a network problem is not a broken checkout
    assert git(checkout, "rev-parse", "HEAD") == commit


def test_remote_missing_on_first_clone(tmp_path: Path, checkout: Path) -> None:
    url = str(tmp_path / "nowhere.git")
    with pytest.raises(SourceError, match=r"^cannot fetch branch 'main' from .*nowhere\.git: "):
        fetch_branch(url, "main", checkout)
    assert not checkout.exists()
    assert os.listdir(checkout.parent) == []  # the temp clone was removed


def test_unknown_branch_on_clone_and_on_fetch(upstream: Upstream, checkout: Path) -> None:
    message = f"cannot fetch branch 'nope' from {upstream.url}: branch not found"
    with pytest.raises(SourceError) as info:
        fetch_branch(upstream.url, "nope", checkout)
    assert str(info.value) == message
    fetch_branch(upstream.url, "main", checkout)
    with pytest.raises(SourceError) as info:
        fetch_branch(upstream.url, "nope", checkout)
    assert str(info.value) == message


def test_a_tag_is_not_a_branch(upstream: Upstream, checkout: Path) -> None:
    git(upstream.work, "tag", "v1")
    git(upstream.work, "push", "--quiet", "origin", "v1")
    with pytest.raises(SourceError, match=r"branch 'v1' .*: branch not found"):
        fetch_branch(upstream.url, "v1", checkout)
    assert not checkout.exists()


def test_credentials_never_appear_in_messages(checkout: Path) -> None:
    url = "https://deploy:s3cr3t-token@127.0.0.1:1/jobs.git"  # port 1: refused at once
    with pytest.raises(SourceError) as info:
        fetch_branch(url, "main", checkout)
    message = str(info.value)
    assert "s3cr3t" not in message
    assert "deploy" not in message
    assert message.startswith("cannot fetch branch 'main' from https://***@127.0.0.1:1/jobs.git: ")


def test_network_timeout_kills_git(checkout: Path) -> None:
    # A server that accepts connections (via the backlog) and never answers.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"git://127.0.0.1:{server.getsockname()[1]}/jobs.git"
        with pytest.raises(SourceError, match=r": timed out after 0\.5 s$"):
            fetch_branch(url, "main", checkout, timeout=0.5)
    assert not checkout.exists()


def corrupt_delete_head(checkout: Path) -> None:
    (checkout / ".git" / "HEAD").unlink()


def corrupt_garbage_head(checkout: Path) -> None:
    (checkout / ".git" / "HEAD").write_text("garbage\n")


def corrupt_empty_objects(checkout: Path) -> None:
    for path in (checkout / ".git" / "objects").rglob("*"):
        if path.is_file():
            path.chmod(0o644)
            path.unlink()


def corrupt_one_blob(checkout: Path) -> None:
    blob = git(checkout, "rev-parse", "HEAD:jobs/a.toml")
    (checkout / ".git" / "objects" / blob[:2] / blob[2:]).unlink()


def corrupt_index(checkout: Path) -> None:
    (checkout / ".git" / "index").write_bytes(b"DIRC garbage")


def corrupt_config(checkout: Path) -> None:
    (checkout / ".git" / "config").write_text("[core\nthis is not git config\n")


def corrupt_packed_refs_unterminated(checkout: Path) -> None:
    """``packed-refs`` whose last line has no newline (git: "unterminated line")."""
    git(checkout, "pack-refs", "--all")
    packed = checkout / ".git" / "packed-refs"
    packed.write_bytes(packed.read_bytes().rstrip(b"\n"))


def corrupt_stale_ref_lock(checkout: Path) -> None:
    """The lock a git killed mid-fetch leaves on the tracking ref."""
    (checkout / ".git" / "refs" / "remotes" / "origin" / "main.lock").write_text("")


def corrupt_no_git_dir(checkout: Path) -> None:
    shutil.rmtree(checkout / ".git")


UNSEEN_WHILE_TIP_UNCHANGED = (corrupt_empty_objects, corrupt_one_blob, corrupt_index)


@pytest.mark.parametrize(
    ("corrupt", "must_reclone"),
    [
        (corrupt_delete_head, True),
        (corrupt_garbage_head, True),
        # git fetch notices that the refs' objects are gone and fetches them all again
        (corrupt_empty_objects, False),
        (corrupt_one_blob, True),
        (corrupt_index, True),
        (corrupt_config, True),
        (corrupt_packed_refs_unterminated, True),
        (corrupt_no_git_dir, True),
    ],
)
@pytest.mark.parametrize("upstream_moved", [False, True])
def test_corrupt_checkout_is_recloned(
    upstream: Upstream,
    checkout: Path,
    tmp_path: Path,
    corrupt: Callable[[Path], None],
    must_reclone: bool,
    upstream_moved: bool,
) -> None:
    first = fetch_branch(upstream.url, "main", checkout).commit
    corrupt(checkout)
    expected = first
    if upstream_moved:
        expected = upstream.commit({"jobs/b.toml": "b\n"})
        upstream.push()
    result = fetch_branch(upstream.url, "main", checkout)
    assert result.commit == expected
    if not upstream_moved and corrupt in UNSEEN_WHILE_TIP_UNCHANGED:
        # The no-op path does not inspect objects, index or work tree (it stays
        # cheap); the damage is found when a new tip arrives, or by sync when an
        # export fails (tests/integration/test_sync*.py).
        return
    if must_reclone:
        assert result.recloned is True
    assert result.previous in (first, None)
    assert git(checkout, "rev-parse", "HEAD") == expected
    git(checkout, "fsck", "--no-dangling")
    assert sorted(os.listdir(checkout.parent)) == [CLONE_MARKER, "repo"]
    export_commit(checkout, expected, tmp_path / "export")
    assert (tmp_path / "export" / "jobs" / "a.toml").exists()


def test_stale_ref_lock_is_recloned_once_the_tip_moves(upstream: Upstream, checkout: Path) -> None:
    """A lock left by a git killed mid-fetch: the next fetch cannot update the ref, so
    the checkout is cloned afresh (no sync runs git in it meanwhile: the sync lock)."""
    fetch_branch(upstream.url, "main", checkout)
    corrupt_stale_ref_lock(checkout)
    new = upstream.commit({"jobs/b.toml": "b\n"})
    upstream.push()
    result = fetch_branch(upstream.url, "main", checkout)
    assert (result.commit, result.recloned) == (new, True)
    assert not (checkout / ".git" / "refs" / "remotes" / "origin" / "main.lock").exists()


def test_changed_url_in_config(tmp_path: Path, upstream: Upstream, checkout: Path) -> None:
    fetch_branch(upstream.url, "main", checkout)
    moved = tmp_path / "moved.git"
    git(tmp_path, "clone", "--quiet", "--bare", upstream.url, str(moved))
    new = upstream.commit({"jobs/moved.toml": "x\n"}, "only on the new remote")
    git(upstream.work, "push", "--quiet", str(moved), "HEAD:refs/heads/main")
    result = fetch_branch(str(moved), "main", checkout)
    assert (result.commit, result.recloned) == (new, False)
    assert git(checkout, "config", "--get", "remote.origin.url") == str(moved)


NOT_OURS = (
    r"exists, has no \.git and is not the directory cronsync cloned "
    r"\(\.{name}\.cronsync-clone next to it names the one it made\); refusing to replace it"
)


def test_checkout_path_that_is_not_ours_is_never_deleted(
    upstream: Upstream, tmp_path: Path
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep me")
    with pytest.raises(SourceError, match=NOT_OURS.format(name="precious")):
        fetch_branch(upstream.url, "main", precious)
    assert (precious / "data").read_text() == "keep me"


def test_a_directory_put_where_the_checkout_was_is_never_deleted(
    upstream: Upstream, checkout: Path, tmp_path: Path
) -> None:
    """The marker names the directory cronsync cloned (device and inode): a directory
    someone else put at the same path is not taken for it."""
    fetch_branch(upstream.url, "main", checkout)
    checkout.rename(tmp_path / "moved-away")
    checkout.mkdir()
    (checkout / "data").write_text("keep me")
    with pytest.raises(SourceError, match=NOT_OURS.format(name="repo")):
        fetch_branch(upstream.url, "main", checkout)
    assert (checkout / "data").read_text() == "keep me"


def test_a_checkout_made_before_the_marker_gets_one(upstream: Upstream, checkout: Path) -> None:
    """Checkouts cloned by older versions have no marker: the first fetch writes it, so
    losing their .git later is recovered too."""
    fetch_branch(upstream.url, "main", checkout)
    marker = checkout.parent / CLONE_MARKER
    marker.unlink()
    assert fetch_branch(upstream.url, "main", checkout).recloned is False
    assert marker.is_file()
    corrupt_no_git_dir(checkout)
    assert fetch_branch(upstream.url, "main", checkout).recloned is True


def test_empty_directory_is_used_for_the_clone(upstream: Upstream, checkout: Path) -> None:
    checkout.mkdir(parents=True)
    assert fetch_branch(upstream.url, "main", checkout).recloned is True
    assert (checkout / "jobs" / "a.toml").exists()


@pytest.mark.parametrize("branch", ["", "-b", "a..b", "a b", "x:y", "^x", "main.lock", "a\nb"])
def test_invalid_branch_names_are_refused(upstream: Upstream, checkout: Path, branch: str) -> None:
    with pytest.raises(SourceError, match="invalid branch name"):
        fetch_branch(upstream.url, branch, checkout)


def test_url_that_looks_like_an_option_is_refused(checkout: Path) -> None:
    with pytest.raises(SourceError, match="invalid repository url"):
        fetch_branch("--upload-pack=touch /tmp/pwned", "main", checkout)


# --- credentials in the URL ------------------------------------------------------------

SECRET = "s3cr3t"
PLAIN_URL = "https://git.example.test/jobs.git"
CREDENTIAL_URL = f"https://bob:{SECRET}%40x@git.example.test/jobs.git"


@dataclass(frozen=True)
class GitCall:
    """One command gitsource ran through its git seam: the argv after ``git`` and
    the environment it added."""

    args: tuple[str, ...]
    env: dict[str, str]


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[GitCall]:
    """Record every git command gitsource runs (through ``gitrun.run_git``, its one git seam)."""
    calls: list[GitCall] = []
    run_git = gitrun.run_git

    def recording(
        cwd: Path, *args: str, timeout: Optional[float] = None, env: Optional[dict[str, str]] = None
    ) -> str:
        calls.append(GitCall(args, dict(env or {})))
        return run_git(cwd, *args, timeout=timeout, env=env)

    monkeypatch.setattr(gitrun, "run_git", recording)
    return calls


def use_global_git_config(monkeypatch: pytest.MonkeyPatch, path: Path, text: str) -> None:
    """Point GIT_CONFIG_GLOBAL (the tests' isolation) at a file holding ``text``."""
    path.write_text(text)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(path))


@pytest.fixture
def example_test_host(upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``https://git.example.test/jobs.git`` (exactly, no user-info) mean the bare repo.

    A URL that still carries ``bob:...@`` does not match, so a clone that works
    proves git was given the URL without credentials.
    """
    config = f'[url "{upstream.bare}"]\n\tinsteadOf = {PLAIN_URL}\n'
    use_global_git_config(monkeypatch, tmp_path / "gitconfig", config)


def files_holding(root: Path, needle: str) -> list[Path]:
    """Every file below ``root`` (``.git`` included) whose bytes contain ``needle``."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes()
    ]


def assert_no_secret_in_argv(calls: list[GitCall]) -> None:
    assert calls
    for call in calls:
        assert not any(SECRET in arg or "bob" in arg for arg in call.args), call.args


def test_credentials_reach_git_only_through_the_environment(
    upstream: Upstream, checkout: Path, example_test_host: None, git_calls: list[GitCall]
) -> None:
    result = fetch_branch(CREDENTIAL_URL, "main", checkout)
    assert result.commit == git(upstream.work, "rev-parse", "HEAD")
    assert (checkout / "jobs" / "a.toml").exists()
    assert git(checkout, "config", "--get", "remote.origin.url") == PLAIN_URL
    assert files_holding(checkout.parent, SECRET) == []
    assert_no_secret_in_argv(git_calls)
    clone = next(call for call in git_calls if "clone" in call.args)
    assert clone.args[:2] == ("-c", "credential.helper=")
    assert PLAIN_URL in clone.args
    askpass = Path(clone.env["GIT_ASKPASS"])
    assert askpass == checkout.parent / ".askpass"
    assert stat.S_IMODE(askpass.stat().st_mode) == 0o700
    assert clone.env["CRONSYNC_GIT_USERNAME"] == "bob"
    assert clone.env["CRONSYNC_GIT_PASSWORD"] == f"{SECRET}@x"  # percent-decoded
    assert "GIT_TERMINAL_PROMPT" not in clone.env  # git still never prompts a terminal
    # Only the commands that talk to the remote get the credentials.
    assert all("CRONSYNC_GIT_PASSWORD" not in call.env for call in git_calls if call != clone)


def test_credentials_on_later_fetches(
    upstream: Upstream, checkout: Path, example_test_host: None, git_calls: list[GitCall]
) -> None:
    fetch_branch(CREDENTIAL_URL, "main", checkout)
    new = upstream.commit({"jobs/b.toml": "b\n"}, "second")
    upstream.push()
    git_calls.clear()
    assert fetch_branch(CREDENTIAL_URL, "main", checkout).commit == new
    assert_no_secret_in_argv(git_calls)
    network = [call for call in git_calls if {"ls-remote", "fetch"} & set(call.args)]
    assert len(network) == 2
    for call in network:
        assert call.args[:2] == ("-c", "credential.helper=")
        assert call.env["CRONSYNC_GIT_PASSWORD"] == f"{SECRET}@x"
    assert files_holding(checkout.parent, SECRET) == []


def test_askpass_answers_git_credential_prompts(
    upstream: Upstream, checkout: Path, example_test_host: None, git_calls: list[GitCall]
) -> None:
    fetch_branch(CREDENTIAL_URL, "main", checkout)
    clone = next(call for call in git_calls if "clone" in call.args)
    # git's own credential machinery (the one its http transport uses), with the
    # environment and options gitsource gave the clone, prompting through askpass.
    done = subprocess.run(
        ["git", *clone.args[:2], "credential", "fill"],
        input="protocol=https\nhost=git.example.test\npath=jobs.git\n\n",
        env={**os.environ, **gitrun.NO_PROMPT_ENV, **clone.env},
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
        timeout=120,
    )
    assert f"username=bob\npassword={SECRET}@x\n" in done.stdout


def test_checkout_with_credentials_in_origin_is_rewritten(
    upstream: Upstream,
    checkout: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    git_calls: list[GitCall],
) -> None:
    # A checkout as older versions made it: cloned with the credentials in the URL.
    config = "".join(
        f'[url "{upstream.bare}"]\n\tinsteadOf = {url}\n' for url in (CREDENTIAL_URL, PLAIN_URL)
    )
    use_global_git_config(monkeypatch, tmp_path / "gitconfig", config)
    checkout.parent.mkdir(parents=True)
    subprocess.run(  # git() would put the empty global config back
        ["git", "clone", "--quiet", "--branch", "main", CREDENTIAL_URL, str(checkout)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert files_holding(checkout, SECRET) == [checkout / ".git" / "config"]

    result = fetch_branch(CREDENTIAL_URL, "main", checkout)
    assert result.recloned is False
    assert git(checkout, "config", "--get", "remote.origin.url") == PLAIN_URL
    assert files_holding(checkout.parent, SECRET) == []
    assert_no_secret_in_argv(git_calls)


def test_urls_without_credentials_get_no_askpass(
    upstream: Upstream, checkout: Path, git_calls: list[GitCall]
) -> None:
    fetch_branch(upstream.url, "main", checkout)
    assert not (checkout.parent / ".askpass").exists()
    assert all(call.args[0] != "-c" and "GIT_ASKPASS" not in call.env for call in git_calls)


def test_tampered_askpass_is_replaced(
    upstream: Upstream, checkout: Path, example_test_host: None
) -> None:
    askpass = checkout.parent / ".askpass"
    askpass.parent.mkdir(parents=True)
    askpass.write_text("#!/bin/sh\necho evil\n")
    askpass.chmod(0o777)
    fetch_branch(CREDENTIAL_URL, "main", checkout)
    assert b"CRONSYNC_GIT_PASSWORD" in askpass.read_bytes()
    assert stat.S_IMODE(askpass.stat().st_mode) == 0o700


@pytest.mark.parametrize("encoded", ["%0A", "%0D", "%00"])
def test_credentials_git_cannot_take_are_refused(checkout: Path, encoded: str) -> None:
    with pytest.raises(SourceError, match=r"^invalid repository url 'https://\*\*\*@host/x\.git'$"):
        fetch_branch(f"https://bob:pw{encoded}x@host/x.git", "main", checkout)
    assert not checkout.parent.exists()


# An http remote: ``git http-backend`` behind a WSGI server that wants basic auth.


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class GitHttpServer:
    """Serves the bare repositories under ``root`` over http to ``user``:``password``.

    On every request it also looks at the command line of every process on the
    machine (what ``ps`` shows) for ``watch``.
    """

    def __init__(self, root: Path, user: str, password: str, watch: str) -> None:
        self.root = root
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.expected = f"Basic {token}"
        self.watch = watch.encode()
        self.user = user
        self.authorizations: list[str] = []
        self.cmdlines_with_secret: list[bytes] = []

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., object]
    ) -> list[bytes]:
        self.scan_cmdlines()
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        self.authorizations.append(authorization)
        if authorization != self.expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="jobs"')])
            return [b""]
        return self.backend(environ, start_response)

    def backend(
        self, environ: dict[str, Any], start_response: Callable[..., object]
    ) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": self.user,
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
        }
        for key in ("PATH_INFO", "REQUEST_METHOD", "QUERY_STRING", "CONTENT_TYPE"):
            cgi[key] = environ.get(key, "")
        for key in ("HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL"):
            if key in environ:
                cgi[key] = environ[key]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env={**os.environ, **cgi},
            capture_output=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = value
            else:
                headers.append((name, value))
        start_response(status, headers)
        return [payload]

    def scan_cmdlines(self) -> None:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                data = cmdline.read_bytes()
                if self.watch in data:
                    self.cmdlines_with_secret.append(data)


@pytest.fixture
def http_server(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, GitHttpServer]]:
    """(base URL, server) of a GitHttpServer for ``upstream`` (bob / s3cr3t@x)."""
    for proxy in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(proxy, raising=False)
    app = GitHttpServer(upstream.bare.parent, "bob", f"{SECRET}@x", watch=SECRET)
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_clone_and_fetch_over_http_with_basic_auth(
    upstream: Upstream, checkout: Path, http_server: tuple[str, GitHttpServer]
) -> None:
    address, server = http_server
    url = f"http://bob:{SECRET}%40x@{address}/{upstream.bare.name}"
    first = fetch_branch(url, "main", checkout)
    assert first.commit == git(upstream.work, "rev-parse", "HEAD")
    new = upstream.commit({"jobs/b.toml": "b\n"}, "second")
    upstream.push()
    assert fetch_branch(url, "main", checkout).commit == new
    assert server.expected in server.authorizations  # git did authenticate
    assert server.cmdlines_with_secret == []  # and ps never showed the password
    assert files_holding(checkout.parent, SECRET) == []
    origin = git(checkout, "config", "--get", "remote.origin.url")
    assert origin == f"http://{address}/{upstream.bare.name}"


QUERY_TOKEN = "t0ken-in-the-query"


@pytest.fixture
def token_server(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, GitHttpServer]]:
    """(base URL, server) of a GitHttpServer for ``upstream`` that takes the token as
    the password of HTTP basic authentication, the way git forges take tokens."""
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    app = GitHttpServer(upstream.bare.parent, "x-access-token", QUERY_TOKEN, watch=QUERY_TOKEN)
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_a_token_in_the_query_string_never_reaches_argv_nor_the_checkout(
    upstream: Upstream,
    checkout: Path,
    token_server: tuple[str, GitHttpServer],
    git_calls: list[GitCall],
) -> None:
    address, server = token_server
    plain = f"http://{address}/{upstream.bare.name}"
    first = fetch_branch(f"{plain}?access_token={QUERY_TOKEN}", "main", checkout)
    assert first.commit == git(upstream.work, "rev-parse", "HEAD")
    new = upstream.commit({"jobs/b.toml": "b\n"}, "second")
    upstream.push()
    assert fetch_branch(f"{plain}?access_token={QUERY_TOKEN}", "main", checkout).commit == new
    assert server.expected in server.authorizations  # the token did authenticate
    assert server.cmdlines_with_secret == []  # no git process ever showed it (helpers too)
    assert all(QUERY_TOKEN not in " ".join(call.args) for call in git_calls)
    assert files_holding(checkout.parent, QUERY_TOKEN) == []
    assert git(checkout, "config", "--get", "remote.origin.url") == plain


def test_a_wrong_query_token_is_masked_in_the_message(
    upstream: Upstream, checkout: Path, token_server: tuple[str, GitHttpServer]
) -> None:
    address, _server = token_server
    url = f"http://{address}/{upstream.bare.name}?access_token=wrong-{QUERY_TOKEN}"
    with pytest.raises(SourceError) as info:
        fetch_branch(url, "main", checkout)
    assert str(info.value) == (
        f"cannot fetch branch 'main' from http://{address}/{upstream.bare.name}"
        "?access_token=***: authentication failed"
    )


def test_a_url_with_two_secrets_is_refused(checkout: Path) -> None:
    with pytest.raises(SourceError) as info:
        fetch_branch("https://bob:pw@127.0.0.1:1/x.git?access_token=T", "main", checkout)
    assert str(info.value) == (
        "invalid repository url 'https://***@127.0.0.1:1/x.git?access_token=***': it carries more "
        "than one secret (give one token)"
    )
    assert not checkout.parent.exists()


def test_wrong_password_over_http_is_an_authentication_failure(
    upstream: Upstream, checkout: Path, http_server: tuple[str, GitHttpServer]
) -> None:
    address, _server = http_server
    url = f"http://bob:wrong-{SECRET}@{address}/{upstream.bare.name}"
    with pytest.raises(SourceError) as info:
        fetch_branch(url, "main", checkout)
    assert str(info.value) == (
        f"cannot fetch branch 'main' from http://***@{address}/{upstream.bare.name}: "
        "authentication failed"
    )


# --- is_ancestor -------------------------------------------------------------------


def test_is_ancestor_unknown_commit_is_false(upstream: Upstream, checkout: Path) -> None:
    commit = fetch_branch(upstream.url, "main", checkout).commit
    assert is_ancestor(checkout, commit, commit) is True
    assert is_ancestor(checkout, "0" * 40, commit) is False
    assert is_ancestor(checkout, commit, "f" * 40) is False


# --- export_commit -------------------------------------------------------------------


@pytest.fixture
def rich_commit(upstream: Upstream, checkout: Path) -> str:
    """A commit with an executable script, a nested dir and symlinks (in and out)."""
    upstream.commit({"scripts/run.sh": "#!/bin/sh\necho hi\n", "cronsync.toml": "x = 1\n"})
    (upstream.work / "scripts" / "run.sh").chmod(0o755)
    os.symlink("../cronsync.toml", upstream.work / "scripts" / "inside")
    os.symlink("../../../etc/passwd", upstream.work / "scripts" / "escape")
    os.symlink("/etc/shadow", upstream.work / "scripts" / "absolute")
    sha = upstream.commit({}, "scripts")
    upstream.push()
    fetch_branch(upstream.url, "main", checkout)
    return sha


@pytest.fixture
def restore_umask() -> Iterator[None]:
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


@pytest.mark.parametrize("process_umask", [0o077, 0o000], ids=oct)
def test_export_keeps_exec_bits_and_symlinks(
    tmp_path: Path, checkout: Path, rich_commit: str, restore_umask: None, process_umask: int
) -> None:
    os.umask(process_umask)
    dest = tmp_path / "releases" / rich_commit
    dest.parent.mkdir()
    export_commit(checkout, rich_commit, dest)

    def mode(rel: str) -> int:
        return stat.S_IMODE(os.lstat(dest / rel).st_mode)

    assert mode(".") == 0o755
    assert mode("scripts") == 0o755
    assert mode("scripts/run.sh") == 0o755
    assert mode("cronsync.toml") == 0o644
    assert mode("jobs/a.toml") == 0o644
    assert (dest / "scripts" / "run.sh").read_text() == "#!/bin/sh\necho hi\n"
    assert os.readlink(dest / "scripts" / "inside") == "../cronsync.toml"
    assert os.readlink(dest / "scripts" / "escape") == "../../../etc/passwd"
    assert os.readlink(dest / "scripts" / "absolute") == "/etc/shadow"
    assert sorted(p.name for p in dest.iterdir()) == ["cronsync.toml", "jobs", "scripts"]


def test_export_ignores_export_attributes(
    upstream: Upstream, tmp_path: Path, checkout: Path
) -> None:
    files = {
        ".gitattributes": "hidden.sh export-ignore\nstamp export-subst\n",
        "hidden.sh": "echo hidden\n",
        "stamp": "$Format:%H$\n",
    }
    sha = upstream.commit(files)
    upstream.push()
    fetch_branch(upstream.url, "main", checkout)
    export_commit(checkout, sha, tmp_path / "release")
    assert (tmp_path / "release" / "hidden.sh").read_text() == "echo hidden\n"
    assert (tmp_path / "release" / "stamp").read_text() == "$Format:%H$\n"


def test_export_of_an_older_commit(upstream: Upstream, tmp_path: Path, checkout: Path) -> None:
    old = git(upstream.work, "rev-parse", "HEAD")
    upstream.commit({"jobs/a.toml": "new\n"})
    upstream.push()
    fetch_branch(upstream.url, "main", checkout)
    export_commit(checkout, old, tmp_path / "old")
    assert (tmp_path / "old" / "jobs" / "a.toml").read_text() == "schedule = '* * * * *'\n"


def test_export_unknown_commit_leaves_no_dest(
    upstream: Upstream, tmp_path: Path, checkout: Path
) -> None:
    fetch_branch(upstream.url, "main", checkout)
    dest = tmp_path / "release"
    with pytest.raises(SourceError, match=r"^cannot export commit 000000000000 of "):
        export_commit(checkout, "0" * 40, dest)
    assert not os.path.lexists(dest)


def test_export_refuses_existing_dest(upstream: Upstream, tmp_path: Path, checkout: Path) -> None:
    commit = fetch_branch(upstream.url, "main", checkout).commit
    dest = tmp_path / "release"
    dest.mkdir()
    (dest / "keep").write_text("x")
    with pytest.raises(SourceError, match="File exists"):
        export_commit(checkout, commit, dest)
    assert (dest / "keep").exists()


# --- extract_tar (crafted archives) --------------------------------------------------


def make_tar(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buffer.seek(0)
    return buffer


def entry(
    name: str, kind: bytes = tarfile.REGTYPE, *, linkname: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info


def test_extract_tar_happy_path_creates_missing_parents(tmp_path: Path) -> None:
    stream = make_tar(
        (entry("a/b/c.sh", mode=0o700), b"#!/bin/sh\n"),
        (entry("a/", tarfile.DIRTYPE, mode=0o700), b""),
        (entry("./top.txt", mode=0o666), b"top"),
    )
    extract_tar(stream, tmp_path)
    assert stat.S_IMODE((tmp_path / "a" / "b" / "c.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "top.txt").stat().st_mode) == 0o644
    assert (tmp_path / "top.txt").read_bytes() == b"top"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([(entry("../evil"), b"x")], "leaves the destination"),
        ([(entry("a/../../evil"), b"x")], "leaves the destination"),
        ([(entry("/etc/evil"), b"x")], "absolute path"),
        ([(entry("dev", tarfile.CHRTYPE), b"")], "not a file, directory or symlink"),
        ([(entry("fifo", tarfile.FIFOTYPE), b"")], "not a file, directory or symlink"),
        ([(entry("hard", tarfile.LNKTYPE, linkname="/etc/passwd"), b"")], "not a file"),
        (
            [(entry("link", tarfile.SYMTYPE, linkname="/tmp"), b""), (entry("link/evil"), b"x")],
            "goes through a non-directory",
        ),
        ([(entry("twice"), b"1"), (entry("twice"), b"2")], "appears twice"),
        ([(entry("d", tarfile.DIRTYPE), b""), (entry("d"), b"x")], "appears twice"),
    ],
)
def test_extract_tar_rejects_unsafe_members(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], message: str
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError, match=message):
        extract_tar(make_tar(*members), dest)
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/evil").exists()


def test_a_checkout_that_kept_a_token_is_cleaned_when_its_origin_is_rewritten(
    upstream: Upstream, checkout: Path
) -> None:
    # a checkout made by an older version: the token of the URL's query in its config,
    # its reflog ("clone: from URL") and FETCH_HEAD
    fetch_branch(upstream.url, "main", checkout)
    old_url = f"https://git.example.com/jobs.git?access_token={QUERY_TOKEN}"
    git(checkout, "config", "remote.origin.url", old_url)
    head = git(checkout, "rev-parse", "HEAD")
    with (checkout / ".git/logs/HEAD").open("a") as log:
        log.write(f"{'0' * 40} {head} A <a@b> 1700000000 +0000\tclone: from {old_url}\n")
    (checkout / ".git/FETCH_HEAD").write_text(f"{head}\t\tbranch 'main' of {old_url}\n")

    fetch_branch(upstream.url, "main", checkout)

    holding = [
        str(path)
        for path in checkout.rglob("*")
        if path.is_file() and QUERY_TOKEN.encode() in path.read_bytes()
    ]
    assert holding == []
