"""Dependencies point one way: _typing/_checks → data → learners → nuisance → cate → router → inference → bayes →
sim → _output/_persist → api → multi → cli."""
import ast
import pathlib

LAYERS = ["_typing", "_checks", "_hyper", "data", "learners", "nuisance", "cate", "router", "inference", "bayes", "sim", "_output", "_persist", "api", "multi", "cli", "__main__"]
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
    only in the data-I/O layer, the facade's outputs and the command line; tqdm only where progress is shown."""
    rooms = {"flax": {"learners"}, "optax": {"learners"}, "numpyro": {"bayes"}, "pandas": {"data", "sim", "api", "multi", "cli"},
             "tqdm": {"sim", "api", "cli"}}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top in rooms:
                    assert _layer(path) in rooms[top], f"{path.relative_to(ROOT)} imports {name}"


def test_every_module_is_in_a_layer_and_the_facade_is_exported():
    """New modules join the layering (a top-level module must be named in LAYERS), and the
    facade is importable from the package root."""
    for path in ROOT.rglob("*.py"):
        layer = _layer(path)
        assert layer == "__init__" or layer in LAYERS, f"{path.relative_to(ROOT)} is in no layer"
    import mrjax

    assert mrjax.MetaRouter.__module__ == "mrjax.api" and "MetaRouter" in mrjax.__all__
    # every learner a user names in MetaRouter(learner=…) is importable from the root as from mrjax.learners
    for name in ("Ridge", "RandomFeatureRidge", "RelevanceRidge", "GradientBoostedTrees", "RandomForest", "Logistic",
                 "MLP", "Auto"):
        assert name in mrjax.__all__ and getattr(mrjax, name) is getattr(mrjax.learners, name), name


def test_one_table_of_methods_and_learners():
    """Router methods and CATE learners are values named in one table each; no module
    dispatches on their names with string comparisons."""
    import re

    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        for pattern in (r"\.kind\s*==", r"method\s*==\s*\"(meta|golden|pooled|preference|mean_shift|all_golden)\"",
                        r"kind\s+in\s+\(\"r\""):
            assert not re.search(pattern, text), f"{path.relative_to(ROOT)} dispatches on a name: {pattern}"
