"""The package as a whole: no module imports another that imports it back, none
imports the repository's configs/ (not installed with the package), and once
installed (not editable) train -> eval -> predict run from any directory."""
import ast
import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from conftest import REPO
from dpfcn_jax.data import synthetic

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


TINY_CONFIG = """from dpfcn_jax import config_files

synthetic = config_files.sibling(__file__, 'synthetic')


def get_config():
  c = synthetic.get_config()
  c.model.width, c.model.jfl_width, c.model.depth = 4, 4, 1
  c.data.tile, c.infer.stride, c.batch_size = 32, 24, 2
  c.data.synthetic.min_side, c.data.synthetic.max_side = 48, 64
  c.data.synthetic.num_scenes = {'train': 1, 'val': 1, 'test': 1}
  c.num_train_steps = c.checkpoint_every_steps = c.log_every_steps = 2
  c.eval_every_steps = 0
  return c
"""


def test_installed_package_runs_train_eval_predict_from_any_directory(tmp_path):
  # --target: a fresh, non-editable copy of the package that uses this environment's
  # dependencies (a fresh venv would have to download them again).
  # Built from a copy: pip builds in the source tree, and a stale build/ there could
  # ship modules since deleted.
  source, site = tmp_path / 'source', tmp_path / 'site'
  shutil.copytree(REPO / 'dpfcn_jax', source / 'dpfcn_jax',
                  ignore=shutil.ignore_patterns('__pycache__'))
  for name in ('setup.cfg', 'pyproject.toml', 'README.md'):
    shutil.copy(REPO / name, source / name)
  pip = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                        '--timeout', '10', '--retries', '0', '--target', str(site), str(source)],
                       capture_output=True, text=True, timeout=600, check=False)
  if pip.returncode:
    pytest.skip(f'pip cannot build the package here: {pip.stderr.strip().splitlines()[-1:]}')
  # A user's own config folder outside the repository; the working directory is elsewhere.
  configs, cwd = tmp_path / 'myconfigs', tmp_path / 'elsewhere'
  configs.mkdir()
  cwd.mkdir()
  for name in ('default.py', 'synthetic.py'):
    shutil.copy(REPO / 'configs' / name, configs / name)
  (configs / 'tiny.py').write_text(TINY_CONFIG)
  scene = synthetic.generate_scene(5, 48, 56)
  for name in ('pre', 'post'):
    Image.fromarray(scene[name]).save(cwd / f'{name}.png')
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env.update(PYTHONPATH=str(site), JAX_PLATFORMS='cpu')

  def run(*args):
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout

  where = run('-c', 'import dpfcn_jax; print(dpfcn_jax.__file__)')
  assert where.strip().startswith(str(site))
  config = f'--config={configs / "tiny.py"}'
  run('-m', 'dpfcn_jax.train', config, '--workdir=work')
  run('-m', 'dpfcn_jax.eval', config, '--workdir=work', '--split=test')
  assert set(json.loads((cwd / 'work' / 'eval' / 'test' / 'metrics.json').read_text())) == {
      'sites', 'pooled'}
  out = run('-m', 'dpfcn_jax.predict', '--workdir=work', '--pre=pre.png', '--post=post.png',
            '--out=maps')
  assert 'landslides' in out and (cwd / 'maps' / 'lim.tif').is_file()
