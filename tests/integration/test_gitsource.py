"""gitsource against real git repositories made in a temp dir (no mocks)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from cronsync.errors import SourceError
from cronsync.gitsource import (
    CommitInfo,
    commit_info,
    export_commit,
    fetch_branch,
    is_ancestor,
)
from cronsync.tarsafe import extract_tar
from cronsync.urls import redact_url

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
        env={**os.environ, **GIT_ENV},
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


# --- redact_url -----------------------------------------------------------------


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
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


# --- fetch_branch ------------------------------------------------------------------


def test_first_clone(upstream: Upstream, checkout: Path) -> None:
    result = fetch_branch(upstream.url, "main", checkout)
    assert result.commit == git(upstream.work, "rev-parse", "HEAD")
    assert len(result.commit) == 40
    assert result.recloned is True
    assert result.previous is None
    assert (checkout / "jobs" / "a.toml").read_text() == "schedule = '* * * * *'\n"
    assert os.listdir(checkout.parent) == ["repo"]  # no temp clone left behind


def test_clone_removes_temp_clones_left_by_an_interrupted_run(
    upstream: Upstream, checkout: Path
) -> None:
    stale = checkout.parent / ".repo.clone-12345-deadbeef"
    (stale / ".git").mkdir(parents=True)
    (checkout.parent / "unrelated").mkdir()
    fetch_branch(upstream.url, "main", checkout)
    assert sorted(os.listdir(checkout.parent)) == ["repo", "unrelated"]


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
    assert os.listdir(checkout.parent) == ["repo"]
    export_commit(checkout, expected, tmp_path / "export")
    assert (tmp_path / "export" / "jobs" / "a.toml").exists()


def test_changed_url_in_config(tmp_path: Path, upstream: Upstream, checkout: Path) -> None:
    fetch_branch(upstream.url, "main", checkout)
    moved = tmp_path / "moved.git"
    git(tmp_path, "clone", "--quiet", "--bare", upstream.url, str(moved))
    new = upstream.commit({"jobs/moved.toml": "x\n"}, "only on the new remote")
    git(upstream.work, "push", "--quiet", str(moved), "HEAD:refs/heads/main")
    result = fetch_branch(str(moved), "main", checkout)
    assert (result.commit, result.recloned) == (new, False)
    assert git(checkout, "config", "--get", "remote.origin.url") == str(moved)


def test_checkout_path_that_is_not_ours_is_never_deleted(
    upstream: Upstream, tmp_path: Path
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep me")
    with pytest.raises(SourceError, match="is not a git checkout; refusing to replace it"):
        fetch_branch(upstream.url, "main", precious)
    assert (precious / "data").read_text() == "keep me"


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


# --- is_ancestor / commit_info -----------------------------------------------------


def test_is_ancestor_unknown_commit_is_false(upstream: Upstream, checkout: Path) -> None:
    commit = fetch_branch(upstream.url, "main", checkout).commit
    assert is_ancestor(checkout, commit, commit) is True
    assert is_ancestor(checkout, "0" * 40, commit) is False
    assert is_ancestor(checkout, commit, "f" * 40) is False


def test_commit_info(upstream: Upstream, checkout: Path) -> None:
    sha = upstream.commit({"jobs/z.toml": "z\n"}, "Add job z\n\nLonger body.")
    upstream.push()
    fetch_branch(upstream.url, "main", checkout)
    info = commit_info(checkout, sha)
    assert info == CommitInfo(
        sha=sha,
        short=sha[:12],
        author="Test Author <author@example.com>",
        date=git(upstream.work, "log", "-1", "--format=%aI"),
        subject="Add job z",
    )


def test_commit_info_unknown_commit(upstream: Upstream, checkout: Path) -> None:
    fetch_branch(upstream.url, "main", checkout)
    with pytest.raises(
        SourceError, match="unknown commit '0000000000000000000000000000000000000000'"
    ):
        commit_info(checkout, "0" * 40)
    with pytest.raises(SourceError, match="invalid revision"):
        commit_info(checkout, "--all")


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
