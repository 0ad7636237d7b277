"""The evals package's imports go one way: the faces' facade (engine) -> arena -> ratings, and
nothing in it reaches up into deploy, monitoring or a face. Imports inside functions count;
those under `if TYPE_CHECKING:` do not (they are annotations only)."""

import ast
from pathlib import Path

EVALS = Path(__file__).resolve().parent.parent / "promstack" / "evals"


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules a file imports, `promstack.evals.x` for `.x`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = {0: "", 1: "promstack.evals", 2: "promstack"}[node.level]
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            if node.module is None:  # from . import suites
                found |= {f"{module}.{a.name}" for a in node.names}
    return found


def _modules() -> dict[str, set[str]]:
    return {p.stem: _imports(p) for p in EVALS.glob("*.py")}


def test_the_rating_math_imports_nothing_of_the_project():
    assert not {m for m in _modules()["ratings"] if m.split(".")[0] in ("promstack", "store", "mcp_server")}


def test_only_the_engine_is_above_the_arena():
    modules = _modules()
    for name, imports in modules.items():
        if name != "engine":
            assert "promstack.evals.engine" not in imports, f"evals/{name}.py imports the engine"
        if name not in ("engine", "arena"):
            assert "promstack.evals.arena" not in imports, f"evals/{name}.py imports the arena"


def test_evals_reaches_no_higher_package_and_no_face():
    higher = ("promstack.deploy", "promstack.monitoring", "promstack.cli", "promstack.web", "mcp_server")
    for name, imports in _modules().items():
        bad = {m for m in imports if m.startswith(higher)}
        assert not bad, f"evals/{name}.py imports {sorted(bad)}"
