"""Dependencies point one way: data → learners → nuisance → cate → router → inference → bayes → sim → api/cli."""
import ast
import pathlib

LAYERS = ["_typing", "data", "learners", "nuisance", "cate", "router", "inference", "bayes", "sim", "api", "cli", "__main__"]
ROOT = pathlib.Path(__file__).resolve().parents[1] / "mrjax"


def _layer(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0].removesuffix(".py")


def test_imports_point_downward_only():
    bad = []
    for path in ROOT.rglob("*.py"):
        layer = _layer(path)
        if layer == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mrjax."):
                target = node.module.split(".")[1]
                if LAYERS.index(target) > LAYERS.index(layer):
                    bad.append(f"{path.relative_to(ROOT)} imports {node.module}")
    assert not bad, bad


def test_third_party_rooms():
    """flax and optax enter only in the MLP module; numpyro only in the Bayesian module; pandas
    only in the data-I/O layer."""
    rooms = {"flax": {"learners"}, "optax": {"learners"}, "numpyro": {"bayes"}, "pandas": {"data", "sim", "cli"}}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top in rooms:
                    assert _layer(path) in rooms[top], f"{path.relative_to(ROOT)} imports {name}"
