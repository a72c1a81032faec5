"""The text of the ``cronsync-run`` launcher ``cronsync install-shim`` writes."""

from __future__ import annotations

import ast

import pytest

from cronsync.core.errors import UsageError
from cronsync.host.shimlauncher import MARKER, launcher_text


def test_the_launcher_starts_python_isolated_without_site_and_names_one_folder() -> None:
    text = launcher_text("/opt/cronsync/bin/python3", "/opt/cronsync/lib/python3.11/site-packages")
    lines = text.splitlines()
    assert lines[0] == "#!/opt/cronsync/bin/python3 -IS"
    assert MARKER in text
    tree = ast.parse(text)
    appended = [
        node.value.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == "sys.path.append"
    ]
    assert appended == ["/opt/cronsync/lib/python3.11/site-packages"]
    assert "launch()" in lines[-1]


@pytest.mark.parametrize("folder", ['/srv/we"ird/%s\\x', "/srv/it's/100%"])
def test_any_folder_name_stays_one_string(folder: str) -> None:
    text = launcher_text("/usr/bin/python3", folder)
    tree = ast.parse(text)  # valid Python whatever the folder holds
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert folder in strings
    message = next(s for s in strings if isinstance(s, str) and "cannot load" in s)
    assert message % "boom" == (
        f"cronsync-run: cannot load cronsync from {folder}: boom "
        "(run `cronsync install-shim` again)\n"
    )


@pytest.mark.parametrize(
    "python",
    ["python3", "bin/python3", "/opt/my venv/bin/python3", "/usr/bin/python3\n", "/" + "p" * 130],
)
def test_an_interpreter_path_a_shebang_cannot_carry_is_refused(python: str) -> None:
    with pytest.raises(UsageError):
        launcher_text(python, "/opt/cronsync/lib")
