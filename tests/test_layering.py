"""The package's layers, its import graph, and where paradigm names may appear.

Imports flow one way (docs: the redesign's layer list)::

    L0 frames, masks, metrics, clicker, voting, system, _compat, progress (and the package root)
    L1 data, segmenters
    L2 paradigms
    L3 models, rewards, trajectories, search
    L4 inference
    L5 evaluation
    L6 train
    L7 interactive, config, runs, fullscale, the CLIs (seglib.__main__, seglib.train.__main__)

``viz`` (figures) sits aside: it may be imported by L5 and above only, and itself imports only L0-L2.

Three checks:

(a) importing a layer's modules in a fresh interpreter loads no module of a higher layer
    (``sys.modules`` after each import; the report names the module that pulled it in);
(b) the import graph read from the source (module-level and function-level imports, everything but
    ``if TYPE_CHECKING:`` blocks, which never run) has no cycle;
(c) outside ``seglib/paradigms/`` no string literal is a registered paradigm's name
    (``seglib.paradigms.PARADIGMS``), except docstrings, function-parameter defaults and dataclass
    field defaults.

Edges of the graph: ``import a.b`` and ``from a.b import c`` point at ``a.b``, or at ``a.b.c`` when that
is a module. Parent packages that Python initialises on the way (``a`` for ``a.b``) are not edges:
every package ``__init__`` that re-exports its submodules would otherwise be a cycle.

``python tests/test_layering.py`` prints all findings as a markdown report (including upward imports
inside functions, which (a) cannot see, and literals that merely contain a paradigm name).
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "seglib"
VIZ = "viz"

#: THE table: every seglib module belongs to the layer of its longest listed prefix.
#: ``"seglib"`` itself is the package root only (its submodules must be listed).
LAYERS: dict[str, int | str] = {
    "seglib": 0,
    "seglib._compat": 0,
    "seglib.progress": 0,
    "seglib.system": 0,
    "seglib.frames": 0,
    "seglib.masks": 0,
    "seglib.metrics": 0,
    "seglib.clicker": 0,
    "seglib.voting": 0,
    "seglib.data": 1,
    "seglib.segmenters": 1,
    "seglib.paradigms": 2,
    "seglib.models": 3,
    "seglib.rewards": 3,
    "seglib.trajectories": 3,
    "seglib.search": 3,
    "seglib.inference": 4,
    "seglib.evaluation": 5,
    "seglib.train": 6,
    "seglib.train.__main__": 7,  # the training CLI (it builds settings through seglib.config)
    "seglib.interactive": 7,
    "seglib.config": 7,
    "seglib.runs": 7,
    "seglib.fullscale": 7,
    "seglib.__main__": 7,
    "seglib.viz": VIZ,
}
VIZ_IMPORTS_UP_TO = 2  # viz itself imports only L0-L2
VIZ_IMPORTED_FROM = 5  # only L5 and above may import viz


# --------------------------------------------------------------------------- the modules and their layers


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    """Every module of the package: dotted name → file."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def layer_of(name: str) -> int | str | None:
    """The layer of a module by its longest prefix in ``LAYERS``; None when the table does not list it."""
    parts = name.split(".")
    while parts:
        key = ".".join(parts)
        if key in LAYERS and (key != "seglib" or name == "seglib"):
            return LAYERS[key]
        parts.pop()
    return None


def may_import_up_to(layer: int | str) -> int:
    """The highest layer a module of ``layer`` may import."""
    return VIZ_IMPORTS_UP_TO if layer == VIZ else int(layer)


def importable_from(layer: int | str) -> int:
    """The lowest layer that may import a module of ``layer``."""
    return VIZ_IMPORTED_FROM if layer == VIZ else int(layer)


def layer_label(layer: int | str) -> str:
    return VIZ if layer == VIZ else f"L{layer}"


GROUPS = [0, 1, 2, VIZ, 3, 4, 5, 6, 7]


def test_every_module_has_a_layer():
    unlisted = [name for name in package_modules() if layer_of(name) is None]
    assert not unlisted, f"modules missing from the LAYERS table of tests/test_layering.py: {unlisted}"


# --------------------------------------------------------------------------- (a) importing a layer

_PROBE = r"""
import importlib, json, sys
out = []
for name in json.loads(sys.argv[1]):
    before = set(sys.modules)
    try:
        importlib.import_module(name)
        error = None
    except BaseException as err:  # noqa: BLE001  (a failed import is a finding, not a crash)
        error = f"{type(err).__name__}: {err}"
    new = sorted(m for m in set(sys.modules) - before if m == "seglib" or m.startswith("seglib."))
    out.append({"module": name, "loaded": new, "error": error})
print("LAYERING-PROBE " + json.dumps(out))
"""


def probe_imports(modules: list[str]) -> list[dict]:
    """Import ``modules`` one after another in a fresh interpreter; for each, the seglib modules it loaded."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("SEGLIB_HEADLESS", "1")
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(modules)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("LAYERING-PROBE ")), None)
    if line is None:
        raise AssertionError(f"the import probe died (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line[len("LAYERING-PROBE "):])


def layer_violations(group: int | str) -> list[str]:
    """What importing the modules of ``group`` loaded from higher layers (or failed to import)."""
    own = sorted(n for n in package_modules() if layer_of(n) == group)
    if not own:
        return []
    limit = may_import_up_to(group)
    problems = []
    for rec in probe_imports(own):
        if rec["error"]:
            problems.append(f"{rec['module']} does not import: {rec['error']}")
        for loaded in rec["loaded"]:
            layer = layer_of(loaded)
            if layer is None or layer == group:
                continue
            if importable_from(layer) > limit:
                problems.append(f"{rec['module']} ({layer_label(group)}) loads {loaded} ({layer_label(layer)})")
    return problems


@pytest.mark.parametrize("group", GROUPS, ids=layer_label)
def test_layer_loads_nothing_above_it(group):
    problems = layer_violations(group)
    assert not problems, f"importing {layer_label(group)} pulls in higher layers:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- (b) the import graph


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom that can run: module level, in functions, classes, try/if bodies;
    not the body of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(node: ast.Import | ast.ImportFrom, here: str, is_package: bool, modules: set[str]) -> set[str]:
    """The seglib modules an import statement points at (see the module docstring)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    if node.level:
        base = here.split(".") if is_package else here.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    out = set()
    for a in node.names:
        sub = f"{target}.{a.name}"
        if sub in modules:
            out.add(sub)
        elif target in modules:
            out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    """module → the seglib modules it imports anywhere in its source (no self-edges)."""
    mods = package_modules()
    names = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in _import_nodes(tree):
            edges |= _resolve(node, name, path.name == "__init__.py", names)
        edges.discard(name)
        graph[name] = edges
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module (a cycle), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through a strongly connected component: [m0, m1, ..., m0] (shortest from m0)."""
    comp = set(component)
    start = component[0]
    parent: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                chain = [v]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return chain[::-1] + [start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    return component


def cycle_report() -> list[str]:
    graph = import_graph()
    return [" -> ".join(a_cycle(graph, comp)) + f"   (component of {len(comp)}: {', '.join(comp)})"
            for comp in strongly_connected(graph)]


def test_import_graph_has_no_cycle():
    cycles = cycle_report()
    assert not cycles, "import cycles in seglib (module-level and function-level imports):\n  " + "\n  ".join(cycles)


def upward_imports() -> list[str]:
    """Source imports (any level: module or function) from a module to a layer it may not import."""
    out = []
    for src, targets in sorted(import_graph().items()):
        ls = layer_of(src)
        if ls is None:
            continue
        for dst in sorted(targets):
            ld = layer_of(dst)
            if ld is None or ld == ls:
                continue
            if importable_from(ld) > may_import_up_to(ls):
                out.append(f"{src} ({layer_label(ls)}) imports {dst} ({layer_label(ld)})")
    return out


# --------------------------------------------------------------------------- (c) paradigm names


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes exempt from the paradigm-name rule: docstrings, parameter defaults, dataclass field defaults."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                mark(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for d in list(node.args.defaults) + [d for d in node.args.kw_defaults if d is not None]:
                mark(d)
        if isinstance(node, ast.ClassDef) and any(_is_dataclass_decorator(d) for d in node.decorator_list):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign):
                    mark(stmt.value)
    return skip


def _is_dataclass_decorator(node: ast.expr) -> bool:
    if isinstance(node, ast.Call):
        node = node.func
    return (isinstance(node, ast.Name) and node.id == "dataclass") or (
        isinstance(node, ast.Attribute) and node.attr == "dataclass")


def paradigm_names() -> tuple[str, ...]:
    from seglib.paradigms import PARADIGMS

    return tuple(PARADIGMS)


def outside_paradigms() -> dict[str, Path]:
    root = PACKAGE / "paradigms"
    return {n: p for n, p in package_modules().items() if root not in p.parents}


def paradigm_literals(names: tuple[str, ...], contains: bool = False) -> list[str]:
    """``path:line: 'literal'`` for every string literal equal to a paradigm name (``contains``: holding one
    as a word, e.g. "sft-clicks") outside seglib/paradigms/, exemptions as in the module docstring."""
    word = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    out = []
    for name, path in sorted(outside_paradigms().items()):
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _skipped_nodes(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skip:
                continue
            if node.value in names:
                hit = not contains
            else:
                hit = contains and word.search(node.value) is not None
            if hit:
                out.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    return out


def test_no_paradigm_name_literals_outside_paradigms():
    found = paradigm_literals(paradigm_names())
    assert not found, ("string literals naming a paradigm outside seglib/paradigms/ (a parameter default is "
                       "allowed; move the rest behind the Paradigm interface):\n  " + "\n  ".join(found))


# --------------------------------------------------------------------------- self-checks of the machinery


def test_resolution_and_cycle_finder_on_a_small_graph():
    mods = {"seglib", "seglib.a", "seglib.a.b", "seglib.c"}
    here = "seglib.a.b"
    rel = ast.parse("from . import x\nfrom .. import c\nfrom seglib.a import b\nimport seglib.c\n").body
    got = [_resolve(n, here, False, mods) for n in rel]
    assert got == [{"seglib.a"}, {"seglib.c"}, {"seglib.a.b"}, {"seglib.c"}]
    tree = ast.parse("import seglib.a\nif TYPE_CHECKING:\n    import seglib.c\nelse:\n    import seglib.a.b\n"
                     "def f():\n    from seglib import c\n")
    assert set().union(*(_resolve(n, here, False, mods) for n in _import_nodes(tree))) == {"seglib.a", "seglib.a.b",
                                                                                         "seglib.c"}
    assert sum(1 for _ in _import_nodes(tree)) == 3  # the TYPE_CHECKING body is left out, the function's import counts
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_exemptions_of_the_literal_rule():
    src = '''
"""module docstring: clicks"""
from dataclasses import dataclass, field
def f(p: str = "clicks", *, q=("polygon",)):
    """docstring clicks"""
    return "boxpoints"
@dataclass
class S:
    paradigm: str = "clicks"
    other: list = field(default_factory=lambda: ["polygon"])
    TABLE = {"clicks": 1}
'''
    tree = ast.parse(src)
    skip = _skipped_nodes(tree)
    flagged = sorted(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                     and id(n) not in skip and n.value in ("clicks", "polygon", "boxpoints"))
    assert flagged == ["boxpoints", "clicks"]  # the return value and the plain class attribute's key


def test_layer_violations_names_the_importer(monkeypatch):
    fake = {"seglib.a": 1, "seglib.b": 3, "seglib.v": VIZ}
    monkeypatch.setattr(sys.modules[__name__], "package_modules", lambda: {n: Path(n) for n in fake})
    monkeypatch.setattr(sys.modules[__name__], "layer_of", lambda n: fake.get(n, 0))
    probes = {1: [{"module": "seglib.a", "loaded": ["seglib", "seglib.a", "seglib.b", "seglib.v"], "error": None}],
              VIZ: [{"module": "seglib.v", "loaded": ["seglib.v", "seglib.a"], "error": None}],
              3: [{"module": "seglib.b", "loaded": ["seglib.v"], "error": "ImportError: x"}]}
    monkeypatch.setattr(sys.modules[__name__], "probe_imports", lambda mods: probes[fake[mods[0]]])
    assert layer_violations(1) == ["seglib.a (L1) loads seglib.b (L3)", "seglib.a (L1) loads seglib.v (viz)"]
    assert layer_violations(VIZ) == []  # viz may import L1
    assert layer_violations(3) == ["seglib.b does not import: ImportError: x", "seglib.b (L3) loads seglib.v (viz)"]


def test_the_probe_reports_what_an_import_loads():
    (rec,) = probe_imports(["seglib.frames"])
    assert rec["error"] is None and "seglib.frames" in rec["loaded"] and "seglib" in rec["loaded"]


def test_layer_table_lookup():
    assert layer_of("seglib") == 0 and layer_of("seglib.data.synthref.scene") == 1
    assert layer_of("seglib.viz.core") == VIZ and layer_of("seglib.nonexistent") is None
    assert importable_from(VIZ) == 5 and may_import_up_to(VIZ) == 2


# --------------------------------------------------------------------------- the report


def report() -> str:
    lines = ["# Layering report (tests/test_layering.py)", ""]
    unlisted = [n for n in package_modules() if layer_of(n) is None]
    lines += ["## Modules missing from the layer table", ""] + ([f"- {n}" for n in unlisted] or ["(none)"]) + [""]
    lines += ["## (a) Importing a layer loads a higher one", ""]
    for group in GROUPS:
        problems = layer_violations(group)
        lines += [f"- {layer_label(group)}: " + ("ok" if not problems else f"{len(problems)} problem(s)")]
        lines += [f"  - {p}" for p in problems]
    lines += ["", "## (b) Import cycles (module- and function-level imports)", ""]
    lines += [f"- {c}" for c in cycle_report()] or ["(none)"]
    lines += ["", "## Upward imports anywhere in the source (informational: (a) sees only those that run at "
              "import time)", ""]
    lines += [f"- {u}" for u in upward_imports()] or ["(none)"]
    names = paradigm_names()
    lines += ["", f"## (c) String literals equal to a paradigm name {names} outside seglib/paradigms/", ""]
    lines += [f"- {x}" for x in paradigm_literals(names)] or ["(none)"]
    lines += ["", "## Literals that contain a paradigm name as a word (informational, not tested)", ""]
    lines += [f"- {x}" for x in paradigm_literals(names, contains=True)] or ["(none)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    print(report(), end="")
