"""dpfcn_jax/cli.py: config.xla_flags reach XLA before it starts, and the user's XLA_FLAGS win."""
import concurrent.futures
import os
import subprocess
import sys

import pytest

from conftest import load_config
from dpfcn_jax import cli

YNN = '--xla_cpu_experimental_ynn_fusion_type'


def test_flags_are_appended_unless_xla_flags_names_them(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_multi_thread_eigen=true')
  cli.apply_xla_flags(f'{YNN}= --xla_cpu_use_xnnpack=false', (0, 10, 2))
  assert os.environ['XLA_FLAGS'].split() == [
      '--xla_cpu_multi_thread_eigen=true', f'{YNN}=', '--xla_cpu_use_xnnpack=false']
  monkeypatch.setenv('XLA_FLAGS', f'{YNN}=individual_convolution')
  cli.apply_xla_flags(f'{YNN}=', (0, 10, 2))
  assert os.environ['XLA_FLAGS'] == f'{YNN}=individual_convolution'


def test_flags_are_skipped_on_jax_releases_they_were_not_measured_on(monkeypatch, caplog):
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  cli.apply_xla_flags(f'{YNN}=', (0, 12, 0))
  assert 'XLA_FLAGS' not in os.environ
  assert 'not applied' in caplog.text
  cli.apply_xla_flags('  ', (0, 10, 2))
  assert 'XLA_FLAGS' not in os.environ


_PROBE = '''
import importlib, sys
importlib.import_module(sys.argv[2])  # the entry point's imports must not start jax
from dpfcn_jax import cli
cli.setup(sys.argv[1])
import jax, jax.numpy as jnp
from jax import lax
x, w = jnp.ones((2, 32, 32, 64)), jnp.ones((3, 3, 64, 64))  # small convs skip YNNPACK
conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                             dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
print('__ynn_fusion' in jax.jit(conv).lower(x, w).compile().as_text())
'''


def _uses_ynn(xla_flags, module='dpfcn_jax.cli'):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  out = subprocess.run([sys.executable, '-c', _PROBE, xla_flags, module], env=env, check=True,
                       capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
                           os.path.abspath(__file__))))
  return out.stdout.split()[-1] == 'True'


ENTRIES = ('train', 'eval', 'predict', 'compare', 'benchmark')


@pytest.fixture(scope='module')
def probes():
  """{entry: future of _uses_ynn}, None for the host's default; each probe spends seconds
  importing, so they run two at a time, and the default is probed once."""
  flags = load_config().xla_flags
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    futures = {None: pool.submit(_uses_ynn, '')}
    futures.update({e: pool.submit(_uses_ynn, flags, f'dpfcn_jax.{e}') for e in ENTRIES})
    yield futures
    for future in futures.values():
      future.cancel()


@pytest.mark.parametrize('entry', ENTRIES)
def test_the_default_flag_reaches_xla_from_every_entry_point(probes, entry):
  if not probes[None].result():
    pytest.skip("this host's XLA does not send convolutions to YNNPACK")
  assert not probes[entry].result()


def test_release_heap_is_a_no_op_without_malloc_trim(monkeypatch):
  cli.release_heap()  # glibc: trims; must not raise
  def no_libc(_):
    raise OSError('no C library')
  monkeypatch.setattr(cli.ctypes, 'CDLL', no_libc)
  cli.release_heap()


def test_config_main_sets_up_then_runs_and_turns_user_errors_into_exit_2(monkeypatch, capsys):
  config = load_config('synthetic')
  flag = type('Flag', (), {'value': config})()
  calls = []
  monkeypatch.setattr(cli, 'setup', lambda flags: calls.append(('setup', flags)))
  monkeypatch.setattr(cli.distributed, 'initialize_from_flags',
                      lambda section: calls.append(('join', section.enabled)))
  cli.config_main(flag, lambda c: calls.append(('run', c.model.width)))(['prog'])
  assert calls == [('setup', config.xla_flags), ('join', False), ('run', 8)]
  calls.clear()

  def fail(c):
    raise cli.DpfcnError(f'width {c.model.width} is wrong')

  with pytest.raises(SystemExit) as e:
    cli.config_main(flag, fail, multihost=False)(['prog'])
  assert e.value.code == cli.EXIT_USER_ERROR and calls == [('setup', config.xla_flags)]
  assert capsys.readouterr().err == 'error: width 8 is wrong\n'


def test_compilation_cache_is_under_the_workdir_unless_the_environment_names_one():
  assert cli.compilation_cache_dir('w', '.jax_cache', {}) == os.path.join('w', '.jax_cache')
  assert cli.compilation_cache_dir('w', '', {}) is None
  assert cli.compilation_cache_dir('w', '.jax_cache', {'JAX_COMPILATION_CACHE_DIR': 'c'}) is None


_COMPILE = '''
import sys, jax
from dpfcn_jax import cli
cli.use_compilation_cache(sys.argv[1], '.jax_cache')
jax.jit(lambda x: x * 3 + 1)(1.0).block_until_ready()
'''


@pytest.mark.parametrize('env_cache', [False, True])
def test_a_compiled_program_is_kept_where_the_environment_or_the_workdir_says(tmp_path,
                                                                             env_cache):
  # Without the tests' cache settings: a program that compiles in milliseconds is kept too.
  env = {k: v for k, v in os.environ.items()
         if k not in ('JAX_COMPILATION_CACHE_DIR', 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS')}
  env['JAX_PLATFORMS'] = 'cpu'
  if env_cache:  # the user's choice of both, as the tests make it
    env.update(JAX_COMPILATION_CACHE_DIR=str(tmp_path / 'env'),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
  workdir = tmp_path / 'w'
  r = subprocess.run([sys.executable, '-c', _COMPILE, str(workdir)], env=env,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  kept = tmp_path / 'env' if env_cache else workdir / '.jax_cache'
  assert any(kept.iterdir())
  assert (workdir / '.jax_cache').exists() != env_cache
