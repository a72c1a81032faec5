"""``cronsync install-shim``: the launcher cron lines call, written, checked and run for real."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_shim import ShimSandbox

from cronsync import __version__
from cronsync.core.errors import InstallError
from cronsync.host import shimbundle
from cronsync.host.shimlauncher import install_launcher, launcher_text

PIP_SCRIPT = (
    "#!/opt/cronsync/bin/python3\nimport sys\nfrom cronsync.cli.shim import main\n"
    "if __name__ == '__main__':\n    sys.exit(main())\n"
)


@pytest.fixture
def box(tmp_path: Path, git_env: None) -> Iterator[ShimSandbox]:
    yield ShimSandbox(tmp_path)


def install_shim(
    *args: str, config: str = "/nonexistent/agent.toml"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronsync.cli.main", "install-shim", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CRONSYNC_CONFIG": config},
    )


def test_the_launcher_runs_a_job_as_cron_would(box: ShimSandbox) -> None:
    box.job(
        "greet", 'schedule = "@daily"\ncommand = ["sh", "-c", "echo hello; echo oops >&2; exit 3"]'
    )
    box.sync()
    launcher = box.base / "bin/cronsync-run"
    launcher.parent.mkdir()
    done = install_shim("--path", str(launcher))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {launcher}: {sys.executable} -I -S")
    info = launcher.stat()
    assert stat.S_IMODE(info.st_mode) == 0o755
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (0, 0)
    assert launcher.read_text().splitlines()[0] == f"#!{sys.executable} -IS"

    run = subprocess.run(
        [str(launcher), "--root", str(box.root), "greet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},  # as cron starts it
    )
    assert run.returncode == 3, run.stderr
    last = box.last("greet")
    assert (last["status"], last["exit_code"]) == ("failed", 3)
    log = Path(last["log"]).read_bytes()
    assert b"hello" in log and b"oops" in log


def test_python_variables_cannot_take_the_launcher_over(tmp_path: Path) -> None:
    fake = tmp_path / "evil/cronsync/cli"
    fake.mkdir(parents=True)
    for folder in (fake.parent, fake):
        (folder / "__init__.py").write_text("")
    (fake / "shim.py").write_text("def launch():\n    print('hijacked')\n")
    (tmp_path / "evil/startup.py").write_text("print('hijacked by startup')\n")
    launcher = tmp_path / "cronsync-run"
    assert install_shim("--path", str(launcher)).returncode == 0
    done = subprocess.run(
        [str(launcher), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path / "evil",
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(tmp_path / "evil"),
            "PYTHONSTARTUP": str(tmp_path / "evil/startup.py"),
            "PYTHONHOME": str(tmp_path / "evil"),
        },
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"cronsync-run {__version__}")
    assert "hijacked" not in done.stdout + done.stderr


def test_check_tells_current_outdated_and_missing(tmp_path: Path) -> None:
    launcher = tmp_path / "cronsync-run"
    missing = install_shim("--path", str(launcher), "--check", "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["state"] == "missing"
    assert not launcher.exists()

    launcher.write_text(PIP_SCRIPT)  # pip's console script, as the README set-up once linked
    done = install_shim("--path", str(launcher), "--json")
    document = json.loads(done.stdout)
    assert (done.returncode, document["was"], document["state"], document["written"]) == (
        0,
        "outdated",
        "current",
        True,
    )
    again = install_shim("--path", str(launcher))
    assert (again.returncode, again.stdout.strip()) == (
        0,
        f"{launcher} is already this cronsync's launcher; nothing to do",
    )
    check = install_shim("--path", str(launcher), "--check")
    assert check.returncode == 0
    assert check.stdout.splitlines()[0] == f"{launcher} is this cronsync's launcher"

    launcher.write_text(launcher.read_text().replace(sys.executable, "/usr/bin/python3"))
    stale = install_shim("--path", str(launcher), "--check")
    assert stale.returncode == 1
    assert "another cronsync-run" in stale.stdout


def test_a_file_that_is_not_a_cronsync_run_is_refused_and_kept(tmp_path: Path) -> None:
    mine = tmp_path / "cronsync-run"
    mine.write_text("#!/bin/sh\necho my own script\n")
    done = install_shim("--path", str(mine))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"cronsync: {mine} exists and is not a cronsync-run launcher or console script; "
        "move it away or give --path"
    ]
    assert mine.read_text() == "#!/bin/sh\necho my own script\n"
    assert install_shim("--path", str(tmp_path)).returncode == 2  # a folder
    relative = install_shim("--path", "bin/cronsync-run")
    assert relative.returncode == 2 and "not absolute" in relative.stderr


def test_a_link_is_replaced_and_its_target_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "venv-bin-cronsync-run"
    target.write_text(PIP_SCRIPT)
    link = tmp_path / "cronsync-run"
    link.symlink_to(target)
    assert install_shim("--path", str(link)).returncode == 0
    assert not link.is_symlink()
    assert target.read_text() == PIP_SCRIPT


def test_a_launcher_that_cannot_start_replaces_nothing(tmp_path: Path) -> None:
    launcher = tmp_path / "cronsync-run"
    launcher.write_text(PIP_SCRIPT)
    broken = launcher_text(sys.executable, str(tmp_path / "no-cronsync-here"))
    with pytest.raises(InstallError, match=r"cannot load cronsync from .*nothing was replaced"):
        install_launcher(str(launcher), broken, None)
    assert launcher.read_text() == PIP_SCRIPT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cronsync-run"]


def test_the_default_path_is_cron_shim_of_the_agent_config(box: ShimSandbox) -> None:
    box.job("noop", 'schedule = "@daily"\ncommand = ["true"]')
    wanted = box.base / "sbin/cronsync-run"
    wanted.parent.mkdir()
    box.sync(f'[cron]\nshim = "{wanted}"\n')
    done = install_shim("--json", config=str(box.config_path))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["path"] == str(wanted)
    assert wanted.read_text() == launcher_text(
        sys.executable, document["site_dir"], document["bundle"]["path"]
    )


def test_a_run_without_secrets_loads_no_masking_nor_a_costly_module(box: ShimSandbox) -> None:
    """What a run leaves in ``sys.modules``, started as the launcher starts it (``-I -S``,
    cronsync's folder appended): the masking module only for a job with secrets."""
    box.job("plain", 'schedule = "@daily"\ncommand = ["true"]')
    box.job("secret", 'schedule = "@daily"\ncommand = ["true"]\n[secrets]\nTOKEN = "app/token"')
    box.sync()
    site = str(Path(cronsync_file()).parents[1])
    costly = {"pathlib", "typing", "dataclasses", "subprocess", "json", "re", "enum"}
    costly |= {"contextlib", "functools", "warnings", "signal", "socket", "boto3", "botocore"}

    def modules_after(job: str) -> set[str]:
        code = (
            f"import sys\nsys.path.append({site!r})\nfrom cronsync.cli.shim import main\n"
            f"code = main(['--root', {str(box.root)!r}, {job!r}])\n"
            "print(' '.join(sys.modules))\nsys.exit(code)\n"
        )
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())

    plain = modules_after("plain")
    assert "cronsync.run.runner" in plain
    assert plain & (costly | {"cronsync.run.masking"}) == set()
    with_secret = modules_after("secret")
    assert "cronsync.run.masking" in with_secret  # (the file backend reads TOML: not costly-free)
    assert with_secret & {"boto3", "botocore"} == set()


def cronsync_file() -> str:
    import cronsync

    return str(cronsync.__file__)


@pytest.mark.skipif(os.geteuid() != 0, reason="root's writes are what is checked")
def test_root_writes_no_launcher_into_a_folder_someone_else_controls(tmp_path: Path) -> None:
    # its owner could swap the new launcher before root runs it, or the one cron runs
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    done = install_shim("--path", str(theirs / "cronsync-run"))
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "belongs to uid 65534" in done.stderr
    assert list(theirs.iterdir()) == []


# -- the bundle ------------------------------------------------------------------------

PROBE = (
    "import cronsync.run.runner as r\nprint(type(r.__spec__.loader).__name__, hasattr(r, 'MARK'))\n"
)


def probe(text: str) -> str:
    """Run the launcher ``text`` up to its import of the shim, then say which loader
    loaded the runner and whether it has ``MARK`` (a line a test added to its source)."""
    head = text[: text.index("try:\n    from cronsync.cli.shim import launch")]
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", head + PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of cronsync's package to bundle (and change) without touching the real one."""
    import shutil

    import cronsync

    copy = tmp_path / "site"
    shutil.copytree(
        Path(cronsync.__file__).parent,
        copy / "cronsync",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return copy


def test_the_launcher_imports_the_start_up_modules_from_the_bundle(
    site: Path, tmp_path: Path
) -> None:
    modules = shimbundle.startup_modules(sys.executable, str(site))
    assert "cronsync.run.runner" in modules and "cronsync.cli.shim" in modules
    assert not [name for name in modules if not name.startswith("cronsync")]
    bundle = tmp_path / "cronsync-run.bundle"
    shimbundle.write_bundle(str(bundle), shimbundle.build_bundle(modules, str(site)), None)
    assert shimbundle.bundle_state(str(bundle), str(site)) == "current"
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o644
    text = launcher_text(sys.executable, str(site), str(bundle))
    assert probe(text) == "BundleFinder False"
    assert probe(launcher_text(sys.executable, str(site))) == "SourceFileLoader False"


def test_a_changed_source_makes_the_bundle_stale_and_unused(site: Path, tmp_path: Path) -> None:
    modules = shimbundle.startup_modules(sys.executable, str(site))
    bundle = tmp_path / "cronsync-run.bundle"
    shimbundle.write_bundle(str(bundle), shimbundle.build_bundle(modules, str(site)), None)
    runner = site / "cronsync/run/runner.py"
    runner.write_text(runner.read_text() + "MARK = 1\n")  # cronsync upgraded in place
    assert shimbundle.bundle_state(str(bundle), str(site)) == "stale"
    assert probe(launcher_text(sys.executable, str(site), str(bundle))) == "SourceFileLoader True"
    runner.unlink()
    assert shimbundle.bundle_state(str(bundle), str(site)) == "stale"


def test_a_broken_bundle_is_not_used(site: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "cronsync-run.bundle"
    text = launcher_text(sys.executable, str(site), str(bundle))
    assert shimbundle.bundle_state(str(bundle), str(site)) == "missing"
    assert probe(text) == "SourceFileLoader False"
    for junk in (b"", b"\x00garbage", b"\xe9" * 64):
        bundle.write_bytes(junk)
        assert shimbundle.bundle_state(str(bundle), str(site)) == "unreadable"
        assert probe(text) == "SourceFileLoader False"


def test_install_shim_writes_and_checks_the_bundle(tmp_path: Path) -> None:
    launcher = tmp_path / "cronsync-run"
    done = install_shim("--path", str(launcher), "--json")
    document = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert document["bundle"]["state"] == "current"
    assert document["bundle"]["path"] in launcher.read_text()
    check = install_shim("--path", str(launcher), "--check")
    assert check.returncode == 0, check.stdout
    assert "holds this cronsync's start-up modules" in check.stdout


def test_another_installs_bundle_is_not_used(site: Path, tmp_path: Path) -> None:
    """A bundle made from another copy of cronsync (the venv copied, or cronsync installed
    from another place) is stale for this one, even with every source unchanged."""
    modules = shimbundle.startup_modules(sys.executable, str(site))
    bundle = tmp_path / "cronsync-run.bundle"
    shimbundle.write_bundle(str(bundle), shimbundle.build_bundle(modules, str(site)), None)
    import shutil

    other = tmp_path / "other"
    shutil.copytree(site, other)
    runner = other / "cronsync/run/runner.py"
    runner.write_text(runner.read_text() + "MARK = 1\n")
    assert shimbundle.bundle_state(str(bundle), str(other)) == "stale"
    assert probe(launcher_text(sys.executable, str(other), str(bundle))) == "SourceFileLoader True"


def test_a_bundle_of_another_shape_or_a_fifo_is_unreadable_and_harmless(
    site: Path, tmp_path: Path
) -> None:
    import marshal
    from importlib.util import MAGIC_NUMBER

    bundle = tmp_path / "cronsync-run.bundle"
    text = launcher_text(sys.executable, str(site), str(bundle))
    bundle.write_bytes(
        marshal.dumps((shimbundle.FORMAT, MAGIC_NUMBER, str(site), None, {"a": (1, 2)}))
    )
    assert shimbundle.bundle_state(str(bundle), str(site)) == "unreadable"
    assert probe(text) == "SourceFileLoader False"
    bundle.unlink()
    os.mkfifo(bundle)  # opened without blocking: no job start hangs on it
    assert shimbundle.bundle_state(str(bundle), str(site)) == "unreadable"
    assert probe(text) == "SourceFileLoader False"
