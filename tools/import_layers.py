"""The import graph of the kmallocwd package, read from the source (AST):
its cycles (strongly connected components of more than one module) and the
edges from a library module into the CLI (kmallocwd.cli, __main__).

    python3 tools/import_layers.py [TREE] [--runtime] [--toplevel]

--runtime leaves out the imports under ``if TYPE_CHECKING:`` (never run);
--toplevel leaves out the imports inside functions (run on first call, not
when the module loads).  tests/test_layers.py checks the import-time graph."""
import ast, sys
from pathlib import Path

root = Path(([a for a in sys.argv[1:] if not a.startswith("--")] or ["."])[0])
pkg = root / "kmallocwd"
mods = {}
for p in pkg.rglob("*.py"):
    rel = p.relative_to(root).with_suffix("")
    name = ".".join(rel.parts)
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    mods[name] = p

def resolve(cur, node):
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            out.append(a.name)
    else:
        base = node.module or ""
        if node.level:
            parts = cur.split(".")
            if not mods[cur].name == "__init__.py":
                parts = parts[:-1]
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        out.append(base)
        for a in node.names:
            out.append(base + "." + a.name)
    return out

RUNTIME = "--runtime" in sys.argv
edges = {m: set() for m in mods}
def typing_only(tree):
    """Import nodes under `if TYPE_CHECKING:` (type-only: never run)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                for n in ast.walk(sub):
                    out.add(id(n))
    return out
for m, p in mods.items():
    tree = ast.parse(p.read_text())
    skip = typing_only(tree) if RUNTIME else set()
    if "--toplevel" in sys.argv:  # imports run when the module loads, not in functions
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for n in ast.walk(f):
                    skip.add(id(n))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for t in resolve(m, node):
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and t != "kmallocwd" and not (
                        isinstance(node, ast.ImportFrom) and t == node.module and
                        any((t + "." + a.name) in mods for a in node.names)):
                    edges[m].add(t)

# Tarjan SCC
idx, low, st, on, sccs, n = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = n[0]; n[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx:
            sc(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in edges:
    if v not in idx: sc(v)
cyc = [sorted(c) for c in sccs if len(c) > 1]
def is_cli(m):
    return m in ("kmallocwd.cli", "kmallocwd.__main__") or m.startswith("kmallocwd.cli.")
lib_to_cli = sorted((a, b) for a in edges for b in edges[a] if not is_cli(a) and is_cli(b))
print(f"modules {len(mods)}, edges {sum(map(len, edges.values()))}")
print(f"cycles (SCCs > 1 module): {len(cyc)}")
for c in cyc: print("  ", " <-> ".join(c))
print(f"library -> CLI edges: {len(lib_to_cli)}")
for a, b in lib_to_cli: print("  ", a, "->", b)
