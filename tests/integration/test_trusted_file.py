"""Reading the AWS credentials file root uses: the file and every folder on its way must
be root's (or, unprivileged, this user's) and writable by nobody else, checked at every
read, so a job user cannot swap the file after the agent config was checked."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from cronsync.files.trusted import UntrustedFile, check_trusted_path, read_trusted_file
from cronsync.host.awsclients import CredentialsFileError, file_credentials

KEYS = "[default]\naws_access_key_id = AKIDEXAMPLE1\naws_secret_access_key = very-secret-1\n"
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="changing owners needs root")


def credentials(folder: Path, text: str = KEYS, mode: int = 0o600) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "aws-credentials"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_private_file_in_private_folders_is_read(tmp_path: Path) -> None:
    path = credentials(tmp_path / "etc")
    assert read_trusted_file(str(path)) == KEYS.encode()
    assert file_credentials(str(path)) == {
        "aws_access_key_id": "AKIDEXAMPLE1",
        "aws_secret_access_key": "very-secret-1",
    }


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = credentials(tmp_path / "etc", mode=mode)
    with pytest.raises(UntrustedFile, match=f"mode {mode:04o}"):
        read_trusted_file(str(path))


def test_a_folder_others_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    path = credentials(folder)
    folder.chmod(0o777)
    with pytest.raises(UntrustedFile, match="writable by others"):
        read_trusted_file(str(path))
    folder.chmod(0o1777)  # like /tmp: nobody else can rename or remove what is ours
    assert read_trusted_file(str(path)) == KEYS.encode()


def test_a_symlink_is_followed_to_the_file_it_names_and_that_is_checked(tmp_path: Path) -> None:
    target = credentials(tmp_path / "real", mode=0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(UntrustedFile, match=str(target)):
        read_trusted_file(str(link))
    target.chmod(0o600)
    assert read_trusted_file(str(link)) == KEYS.encode()


def test_a_file_swapped_after_the_check_is_refused_at_the_next_read(tmp_path: Path) -> None:
    path = credentials(tmp_path / "etc")
    assert file_credentials(str(path))
    swapped = path.with_name("swap")
    swapped.write_text(KEYS.replace("AKIDEXAMPLE1", "AKIDATTACKER"))
    swapped.chmod(0o644)
    swapped.replace(path)
    with pytest.raises(CredentialsFileError) as caught:
        file_credentials(str(path))
    assert "mode 0644" in caught.value.message
    assert "AKID" not in caught.value.message and "very-secret" not in caught.value.message


@needs_root
def test_a_file_or_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    path = credentials(tmp_path / "etc")
    os.chown(path, nobody, -1)
    with pytest.raises(UntrustedFile, match=f"belongs to uid {nobody}"):
        read_trusted_file(str(path))
    os.chown(path, 0, -1)
    os.chown(path.parent, nobody, -1)
    with pytest.raises(UntrustedFile, match=f"belongs to uid {nobody}"):
        read_trusted_file(str(path))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not ini at all", "not a credentials file"),
        ("[other]\naws_access_key_id = a\naws_secret_access_key = b\n", "not a credentials"),
        ("[default]\naws_access_key_id = a\n", "needs aws_access_key_id and aws_secret"),
        ("[default]\naws_secret_access_key = the-secret-value\n", "needs aws_access_key_id"),
    ],
)
def test_a_file_without_keys_says_so_without_a_value(tmp_path: Path, text: str, why: str) -> None:
    path = credentials(tmp_path / "etc", text=text)
    with pytest.raises(CredentialsFileError) as caught:
        file_credentials(str(path))
    assert why in caught.value.message
    assert "the-secret-value" not in caught.value.message


def test_a_missing_file_and_a_folder_in_its_place(tmp_path: Path) -> None:
    with pytest.raises(CredentialsFileError, match="does not exist"):
        file_credentials(str(tmp_path / "nothing"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(CredentialsFileError, match="not a regular file"):
        file_credentials(str(tmp_path / "dir"))


# --- a folder read by its path (the gpg keyring of signed commits) ------------------------


def keyring(tmp_path: Path) -> Path:
    """A gpg home like keyboxd's: a file at the top and one in a subfolder."""
    home = tmp_path / "gnupg"
    (home / "public-keys.d").mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    (home / "common.conf").write_text("use-keyboxd\n")
    (home / "public-keys.d" / "pubring.db").write_bytes(b"keys")
    return home


def test_a_keyring_folder_of_this_user_passes(tmp_path: Path) -> None:
    home = keyring(tmp_path)
    assert check_trusted_path(str(home), directory=True) == str(home)


@pytest.mark.parametrize("deep", ["public-keys.d/pubring.db", "public-keys.d"])
def test_an_entry_others_may_write_deep_in_the_keyring_is_refused(
    tmp_path: Path, deep: str
) -> None:
    home = keyring(tmp_path)
    (home / deep).chmod(0o777 if deep.endswith(".d") else 0o666)
    with pytest.raises(UntrustedFile, match=f"{home / deep} is writable by others"):
        check_trusted_path(str(home), directory=True)


def test_a_file_others_may_write_three_levels_down_is_refused(tmp_path: Path) -> None:
    home = keyring(tmp_path)
    deep = home / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "x").write_text("x")
    (deep / "x").chmod(0o646)
    with pytest.raises(UntrustedFile, match=f"{deep / 'x'} is writable by others"):
        check_trusted_path(str(home), directory=True)


def test_a_symlink_in_the_keyring_is_refused_not_followed(tmp_path: Path) -> None:
    home = keyring(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keys anyone may change")
    elsewhere.chmod(0o666)
    (home / "public-keys.d" / "pubring.db").unlink()
    (home / "public-keys.d" / "pubring.db").symlink_to(elsewhere)
    with pytest.raises(UntrustedFile, match="is a symbolic link"):
        check_trusted_path(str(home), directory=True)


@needs_root
def test_an_entry_of_another_user_deep_in_the_keyring_is_refused(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    home = keyring(tmp_path)
    os.chown(home / "public-keys.d" / "pubring.db", nobody, -1)
    with pytest.raises(UntrustedFile, match=f"belongs to uid {nobody}"):
        check_trusted_path(str(home), directory=True)
