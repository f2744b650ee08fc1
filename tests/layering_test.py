"""The package's import graph: no cycle, and no import from a lower layer to a higher one.

Every import statement counts, at module level or inside a function (a deferred import is
still a dependency). A new module must belong to a layer below; docs/layout.md lists them.
"""
import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
# Lowest first. A module may import its own layer and the layers before it.
LAYERS = (
    ("core", ("spot_jax", "spot_jax.paths", "spot_jax.settings", "spot_jax.atomic_files",
              "spot_jax.run_lock")),
    ("model", ("spot_jax.model", "spot_jax.evaluation")),
    ("prompts", ("spot_jax.prompts",)),
    ("tasks", ("spot_jax.tasks", "spot_jax.embedded")),
    ("training", ("spot_jax.training", "spot_jax.embedded.build")),  # builds the backbone
    ("transfer", ("spot_jax.transfer",)),
    ("t5x", ("spot_jax.t5x_integration",)),
    ("commands", ("spot_jax.cli", "spot_jax.gin_engines", "spot_jax.train", "spot_jax.eval",
                  "spot_jax.infer", "spot_jax.spot", "spot_jax.pipeline")),
)


def _modules():
  """`{dotted name: file}` of the installed package (`tasks/` installs as spot_jax.tasks)."""
  found = {}
  for folder, package in ((REPO / "spot_jax", "spot_jax"), (REPO / "tasks", "spot_jax.tasks")):
    for path in folder.rglob("*.py"):
      parts = list(path.relative_to(folder).with_suffix("").parts)
      if parts[-1] == "__init__":
        parts.pop()
      found[".".join([package, *parts])] = path
  return found


def import_graph():
  """`{module: set of spot_jax modules it imports}`."""
  modules = _modules()

  def owner(name):
    while name and name not in modules:
      name = name.rpartition(".")[0]
    return name

  graph = {}
  for name, path in modules.items():
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
      if isinstance(node, ast.Import):
        imported = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          anchor = package
          for _ in range(node.level - 1):
            anchor = anchor.rpartition(".")[0]
          base = f"{anchor}.{base}" if base else anchor
        imported = [f"{base}.{alias.name}" for alias in node.names]
      else:
        continue
      targets |= {owner(i) for i in imported if i.startswith("spot_jax")} - {"", name}
    graph[name] = targets
  return graph


def layer_of(module):
  best = None
  for index, (_, prefixes) in enumerate(LAYERS):
    for prefix in prefixes:
      if module == prefix or (prefix != "spot_jax" and module.startswith(prefix + ".")):
        if best is None or len(prefix) > len(best[1]):
          best = (index, prefix)
  return None if best is None else best[0]


def cycles(graph):
  """Strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return found


def test_the_checks_see_a_cycle_and_an_upward_import():
  graph = {"spot_jax.training.a": {"spot_jax.transfer.b"}, "spot_jax.transfer.b":
           {"spot_jax.training.a"}}
  assert cycles(graph) == [["spot_jax.training.a", "spot_jax.transfer.b"]]
  assert layer_of("spot_jax.training.a") < layer_of("spot_jax.transfer.b")
  assert layer_of("spot_jax") == 0 and layer_of("spot_jax.tasks.glue") == 3
  assert layer_of("spot_jax.somewhere_new") is None


def test_the_graph_reads_every_import_form():
  graph = import_graph()
  assert "spot_jax.model.t5" in graph["spot_jax.training.trainer"]  # from ... import T5
  assert "spot_jax.training.data" in graph["spot_jax.transfer.zero_shot"]  # inside a function
  assert "spot_jax.tasks.formats" in graph["spot_jax.tasks.glue"]  # tasks/ is spot_jax.tasks


def test_every_module_has_a_layer():
  assert [m for m in import_graph() if layer_of(m) is None] == []


def test_there_is_no_import_cycle():
  assert cycles(import_graph()) == []


def test_no_module_imports_a_higher_layer():
  upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
            for m, targets in sorted(import_graph().items()) for t in sorted(targets)
            if layer_of(t) > layer_of(m)]
  assert upward == []
