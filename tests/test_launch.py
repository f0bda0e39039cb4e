"""launch/: the shell scripts parse and call what they should; the Colab notebook runs."""
import json
import os
import re
import subprocess
import sys
import tarfile
import time

import jax
import pytest
from PIL import Image

from conftest import REPO
from dpfcn_jax import checkpoint, train_state
from dpfcn_jax.data import pipeline

LAUNCH = REPO / 'launch'
NOTEBOOK = LAUNCH / 'inspect_checkpoint.ipynb'

# Runs the notebook's code cells in order in one namespace, as a kernel would.
_RUN_CELLS = '''
import json, sys
cells = [c for c in json.load(open(sys.argv[1]))['cells'] if c['cell_type'] == 'code']
namespace = {}
for i, cell in enumerate(cells):
  exec(compile(''.join(cell['source']), f'<cell {i}>', 'exec'), namespace)
'''

# Stands in for IPython.display: saves every image it is shown to $SHOWN_DIR.
_DISPLAY_STUB = '''
import os
def display(image):
  folder = os.environ['SHOWN_DIR']
  image.save(os.path.join(folder, f'{len(os.listdir(folder))}.png'))
'''


@pytest.mark.parametrize('script', ['local.sh', 'slurm.sbatch', 'tpu_vm.sh', 'demo.sh',
                                    'test.sh', 'crossval_rows.sh', 'crossval_parallel.sh',
                                    'predict_slurm.sbatch',
                                    'gpu_checks.sh', 'gpu_crossval.sh'])
def test_script_parses(script):
  r = subprocess.run(['bash', '-n', str(LAUNCH / script)], capture_output=True, text=True)
  assert r.returncode == 0, r.stderr


def _stub(folder, name):
  """An executable that prints its name and arguments, one per line."""
  path = folder / name
  path.write_text(f'#!/bin/sh\necho {name}\nfor a in "$@"; do echo "$a"; done\n')
  path.chmod(0o755)
  return path


def _bash(script, args, tmp_path, **env):
  clean = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
  r = subprocess.run(['bash', str(LAUNCH / script), *args], capture_output=True, text=True,
                     env={**clean, 'PATH': f'{tmp_path}:{os.environ["PATH"]}', **env},
                     timeout=60)
  assert r.returncode == 0, r.stderr
  return r.stdout.splitlines()


def test_crossval_rows_runs_the_methods_then_each_row_then_one_table(tmp_path):
  python = tmp_path / 'python'  # records its arguments and leaves the files a run leaves
  python.write_text('#!/bin/sh\necho "$@" >> "$LOG"\nfor a in "$@"; do case $a in '
                    '--workdir=*) w=${a#--workdir=};; esac; done\n'
                    'mkdir -p "$w" && touch "$w/comparison.md" "$w/crossval.json"\n')
  python.chmod(0o755)
  log, w = tmp_path / 'log', tmp_path / 'w'
  _bash('crossval_rows.sh', ['configs/compare_airchange.py', str(w), '--folds=2'], tmp_path,
        PYTHON=str(python), LOG=str(log), ROWS='ema extra')
  lines = log.read_text().splitlines()
  crossval = '-m dpfcn_jax.crossval --config=configs/compare_airchange.py'
  assert lines == [
      f'{crossval} --workdir={w}/methods --methods=cmi_otsu,else,rlse,lseluc,fcn,unet,fcnpp,'
      'dpfcn --folds=2',
      f'{crossval} --workdir={w}/ema --folds=2 --config.ema_decay=0.995',
      f"{crossval} --workdir={w}/extra --folds=2 --config.data.train_only_sites=('extra/archieve',)",
      f'-m dpfcn_jax.crossval_table --workdir={w} --name=rows methods/dpfcn ema extra']


def test_crossval_rows_with_parts_runs_each_row_through_the_parallel_script(tmp_path):
  python = tmp_path / 'python'
  python.write_text('#!/bin/sh\necho "$@" >> "$LOG"\nfor a in "$@"; do case $a in '
                    '--workdir=*) w=${a#--workdir=};; esac; done\n'
                    'mkdir -p "$w" && touch "$w/comparison.md" "$w/crossval.json"\n')
  python.chmod(0o755)
  log, w = tmp_path / 'log', tmp_path / 'w'
  _bash('crossval_rows.sh', ['configs/compare_airchange.py', str(w)], tmp_path,
        PYTHON=str(python), LOG=str(log), ROWS='tta', METHODS='dpfcn', PARTS='2')
  lines = log.read_text().splitlines()
  row = f'-m dpfcn_jax.crossval --config=configs/compare_airchange.py --workdir={w}/tta'
  assert sorted(l for l in lines if '/tta' in l) == [
      f'{row} --config.infer.tta=True', f'{row} --config.infer.tta=True --part=0/2',
      f'{row} --config.infer.tta=True --part=1/2']


def test_crossval_parallel_runs_every_part_at_once_then_the_report(tmp_path):
  python = tmp_path / 'python'  # records its arguments and how many of it run at once
  python.write_text('#!/bin/sh\necho "$$" >> "$LOG.running"\nsleep 0.5\n'
                    'echo "$(wc -l < "$LOG.running") $*" >> "$LOG"\n')
  python.chmod(0o755)
  log, w = tmp_path / 'log', tmp_path / 'w'
  args = ['--config=configs/airchange.py', f'--workdir={w}', '--folds=5']
  _bash('crossval_parallel.sh', ['3', *args], tmp_path, PYTHON=str(python), LOG=str(log))
  lines = log.read_text().splitlines()
  crossval = '-m dpfcn_jax.crossval ' + ' '.join(args)
  assert sorted(l.split(' ', 1)[1] for l in lines[:3]) == [
      f'{crossval} --part={i}/3' for i in range(3)]
  assert all(l.split(' ', 1)[0] == '3' for l in lines[:3])  # all three were running
  assert lines[3] == f'4 {crossval}'  # the report, after every part
  assert sorted(os.listdir(w)) == ['part-0.log', 'part-1.log', 'part-2.log']


@pytest.mark.parametrize('args, message', [(['0', '--workdir=w'], 'a positive process count'),
                                           (['2', '--config=c'], 'no --workdir')])
def test_crossval_parallel_refuses_bad_arguments(tmp_path, args, message):
  r = subprocess.run(['bash', str(LAUNCH / 'crossval_parallel.sh'), *args],
                     capture_output=True, text=True, timeout=60)
  assert r.returncode == 2 and message in r.stderr


def test_crossval_parallel_reports_a_failed_part_and_writes_no_report(tmp_path):
  python = tmp_path / 'python'
  python.write_text('#!/bin/sh\necho "$*" >> "$LOG"\ncase "$*" in *--part=1/2*) exit 3;; esac\n')
  python.chmod(0o755)
  log = tmp_path / 'log'
  r = subprocess.run(['bash', str(LAUNCH / 'crossval_parallel.sh'), '2',
                      f'--workdir={tmp_path / "w"}'], capture_output=True, text=True,
                     env={**os.environ, 'PYTHON': str(python), 'LOG': str(log)}, timeout=60)
  assert r.returncode == 1 and 'part 1/2 failed (exit 3)' in r.stderr
  assert len(log.read_text().splitlines()) == 2


def test_slurm_script_falls_back_to_one_process_without_slurm(tmp_path):
  python = _stub(tmp_path, 'python')
  out = _bash('slurm.sbatch', ['runs/x', '--config.batch_size=16'], tmp_path,
              PYTHON=str(python))
  assert 'srun' not in out
  assert out[:6] == ['python', '-m', 'dpfcn_jax.train', '--config=configs/synthetic.py',
                     '--workdir=runs/x', '--config.batch_size=16']
  assert out[6:9] == ['python', '-m', 'dpfcn_jax.eval']


def test_slurm_script_trains_through_srun_in_a_job(tmp_path):
  _stub(tmp_path, 'srun')
  out = _bash('slurm.sbatch', ['runs/x', 'configs/lantau.py'], tmp_path, PYTHON='python3',
              SLURM_JOB_ID='7', SLURM_SUBMIT_DIR=str(REPO))
  assert out[:5] == ['srun', '--kill-on-bad-exit=1', 'python3', '-m', 'dpfcn_jax.train']
  assert '--config=configs/lantau.py' in out
  evaluation = out[out.index('dpfcn_jax.eval') - 5:]
  assert evaluation[:3] == ['srun', '--nodes=1', '--ntasks=1']


def test_predict_array_script_maps_the_manifest_in_every_task(tmp_path):
  python = _stub(tmp_path, 'python')
  out = _bash('predict_slurm.sbatch', ['runs/x', 'tiles.csv', 'maps/event', '--tta'], tmp_path,
              PYTHON=str(python), SLURM_ARRAY_TASK_ID='3', SLURM_ARRAY_TASK_COUNT='16')
  assert out == ['python', '-m', 'dpfcn_jax.predict', '--workdir=runs/x', '--scenes=tiles.csv',
                 '--out=maps/event', '--tta']


def test_tpu_script_runs_the_same_command_on_every_worker(tmp_path):
  _stub(tmp_path, 'gcloud')
  out = _bash('tpu_vm.sh', ['my-tpu', 'us-central2-b', '/mnt/runs/a b', '--config.seed=3'],
              tmp_path)
  assert out[1:6] == ['compute', 'tpus', 'tpu-vm', 'ssh', 'my-tpu']
  assert '--worker=all' in out
  command = next(a for a in out if a.startswith('--command='))
  assert 'python3 -m dpfcn_jax.train --config=configs/synthetic.py' in command
  assert r'--workdir=/mnt/runs/a\ b --config.distributed.enabled=True --config.seed=3' \
      in command


def test_local_script_trains_then_evaluates(tmp_path):
  python = _stub(tmp_path, 'python')
  out = _bash('local.sh', ['runs/y', 'configs/airchange.py'], tmp_path, PYTHON=str(python))
  assert [out[2], out[out.index('dpfcn_jax.eval') + 3]] == ['dpfcn_jax.train', '--split=test']
  assert out.count('--config=configs/airchange.py') == 2


def test_notebook_inspects_a_two_device_checkpoint_on_one_device(tiny_config, tmp_path):
  workdir = tmp_path / 'run'
  state = train_state.create_train_state(tiny_config, jax.random.key(0, impl='rbg'))
  state = jax.device_put(jax.device_get(state), train_state.replicated_sharding())
  assert len(state.step.sharding.device_set) == 2
  mngr = checkpoint.manager(str(workdir))
  checkpoint.save(mngr, state, tiny_config)
  mngr.close()
  stub = tmp_path / 'stub' / 'IPython'
  stub.mkdir(parents=True)
  (stub / '__init__.py').write_text('')
  (stub / 'display.py').write_text(_DISPLAY_STUB)
  shown = tmp_path / 'shown'
  shown.mkdir()
  env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
  env.update(DPFCN_WORKDIR=str(workdir), SHOWN_DIR=str(shown), JAX_PLATFORMS='cpu',
             JAX_NUM_CPU_DEVICES='1', PYTHONPATH=str(tmp_path / 'stub'))
  r = subprocess.run([sys.executable, '-c', _RUN_CELLS, str(NOTEBOOK)], cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  count = sum(x.size for x in jax.tree.leaves(state.params))
  assert f'total parameters: {count}' in r.stdout
  assert '"width": 4' in r.stdout and 'checkpoint of step 0' in r.stdout
  assert 'CpuDevice(id=0)]' in r.stdout  # one device here, two wrote the checkpoint
  scene = pipeline.load_split(tiny_config.data, 'test')[0]
  images = [Image.open(shown / f'{i}.png') for i in range(2)]
  assert sorted(os.listdir(shown)) == ['0.png', '1.png']
  assert all(im.size == scene.mask.shape[::-1] for im in images)
  assert [im.mode for im in images] == ['L', 'RGB']
  assert json.loads(NOTEBOOK.read_text())['nbformat'] == 4


def test_gpu_checks_run_end_to_end_at_tiny_sizes_into_one_archive(tmp_path):
  env = dict(os.environ, GPU_CHECKS_TINY='1', PYTHON=sys.executable, JAX_PLATFORMS='cpu')
  r = subprocess.run(['bash', str(LAUNCH / 'gpu_checks.sh'), str(tmp_path / 'out')], env=env,
                     capture_output=True, text=True, timeout=1200)
  assert r.returncode == 0, r.stderr[-3000:]
  with tarfile.open(tmp_path / 'out' / 'gpu_checks.tar.gz') as tar:
    summary = tar.extractfile('gpu_checks/summary.txt').read().decode()
    steps = tar.extractfile('gpu_checks/steps.tsv').read().decode().splitlines()
  assert [l.split('\t')[:2] for l in steps] == [[name, 'rc=0'] for name in (
      'train', 'bench_train', 'bench_data', 'bench_data_wide', 'scene', 'scene_again',
      'mfu_train', 'mfu_infer')]
  assert re.search(r'ratio train / benchmark: \d+\.\d+', summary), summary
  assert '| 300 x 300 |' in summary and 'landslides,' in summary
  assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['gpu_checks',
                                                                  'gpu_checks.tar.gz']


def _gpu_crossval(tmp_path, *args):
  env = dict(os.environ, GPU_CROSSVAL_TINY='1', PYTHON=sys.executable, JAX_PLATFORMS='cpu',
             PARTS='2', ROWS='combined', METHODS='cmi_otsu')
  r = subprocess.run(['bash', str(LAUNCH / 'gpu_crossval.sh'), str(tmp_path / 'out'), *args],
                     env=env, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  with tarfile.open(tmp_path / 'out' / 'gpu_crossval.tar.gz') as tar:
    steps = tar.extractfile('gpu_crossval/steps.tsv').read().decode()
    reports = tarfile.open(fileobj=tar.extractfile('gpu_crossval/reports.tar.gz'))
    return steps, sorted(n for n in reports.getnames() if '.' in n[2:])


def test_gpu_crossval_runs_the_methods_and_rows_at_tiny_sizes_into_one_archive(tmp_path):
  steps, reports = _gpu_crossval(tmp_path)
  assert '\trc=0\t' in steps
  assert {'./methods/comparison.md', './methods/cmi_otsu/crossval.json',
          './combined/crossval.md', './rows.md', './combined/part-1.log'} <= set(reports)


def test_gpu_crossval_at_its_deadline_stops_every_part_and_still_archives(tmp_path):
  steps, reports = _gpu_crossval(tmp_path, '3')
  assert '\trc=124\t' in steps  # timeout's status: the deadline stopped the rows
  assert not any(n.endswith('crossval.json') for n in reports)
  time.sleep(1)
  alive = subprocess.run(['pgrep', '-f', '--', f'--workdir={tmp_path}'], capture_output=True)
  assert alive.returncode == 1  # no part left running
