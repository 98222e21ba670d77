"""The engine stays UI-free."""
import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "aecore"


def test_no_streamlit_import_under_aecore():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert not offenders, offenders
