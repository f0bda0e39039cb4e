"""The package as a whole: no module imports another that imports it back, and
none imports the repository's configs/ (not installed with the package)."""
import ast
import pathlib

import pytest

from conftest import REPO

PACKAGE = REPO / 'dpfcn_jax'


def _imports():
  """{module: the modules it imports, at any depth in the file}.

  `from package import module` counts as importing the module only: a package's
  __init__ that imports its submodules is no cycle with them.
  """
  paths = {'.'.join(p.relative_to(REPO).with_suffix('').parts).removesuffix('.__init__'): p
           for p in PACKAGE.rglob('*.py')}
  graph = {}
  for name, path in paths.items():
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
      if isinstance(node, ast.Import):
        found |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom) and node.module:
        for a in node.names:
          full = f'{node.module}.{a.name}'
          found.add(full if full in paths else node.module)
    graph[name] = found
  return graph


def test_no_module_imports_configs():
  offenders = {m for m, deps in _imports().items()
               if any(d == 'configs' or d.startswith('configs.') for d in deps)}
  assert not offenders


def test_the_import_graph_has_no_cycle():
  graph = _imports()
  graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
  done, path = set(), []

  def visit(m):
    if m in path:
      pytest.fail('import cycle: ' + ' -> '.join(path[path.index(m):] + [m]))
    if m in done:
      return
    path.append(m)
    for d in sorted(graph[m]):
      visit(d)
    path.pop()
    done.add(m)

  for m in sorted(graph):
    visit(m)
