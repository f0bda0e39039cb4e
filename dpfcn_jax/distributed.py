"""Multi-host runtime: joins this process to its job before JAX touches a device.

A run finds its place in three ways, first match wins:
1. --coordinator_address, --num_processes, --process_id (any machines that can
   reach port PORT of the coordinator, process 0);
2. inside a SLURM job step (srun), or with --config.distributed.enabled=True (Cloud
   TPU VMs, Open MPI, Kubernetes), `jax.distributed.initialize()` detects the job;
3. otherwise: one process on all local devices, nothing to initialise.
After it, every process sees all devices of the job (`jax.devices()`) and feeds
its own (`jax.local_devices()`); train_lib splits the global batch accordingly.
"""
import logging
import os

import jax
from absl import flags

from dpfcn_jax.errors import ConfigError

# What srun sets for every task of a job step, and what jax's SLURM detection reads.
SLURM_STEP_VARS = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID',
                   'SLURM_LOCALID')

log = logging.getLogger(__name__)


def define_flags():
  """Defines the explicit cluster flags; call once at import time of a main."""
  flags.DEFINE_string('coordinator_address', None,
                      'HOST:PORT of process 0; with --num_processes and --process_id '
                      'runs one process of a multi-host job.')
  flags.DEFINE_integer('num_processes', None, 'Processes in the job (with '
                       '--coordinator_address).')
  flags.DEFINE_integer('process_id', None, 'This process, 0 .. num_processes - 1 (with '
                       '--coordinator_address).')


def init_args(dist_config, coordinator_address=None, num_processes=None, process_id=None,
              environ=None):
  """Keyword arguments for `jax.distributed.initialize`, or None for a lone process."""
  environ = os.environ if environ is None else environ
  explicit = (coordinator_address, num_processes, process_id)
  if coordinator_address:
    if None in explicit:
      raise ConfigError('--coordinator_address needs --num_processes and --process_id')
    if not 0 <= process_id < num_processes:
      raise ConfigError(f'--process_id {process_id} is not in 0 .. {num_processes - 1}')
    args = dict(coordinator_address=coordinator_address, num_processes=num_processes,
                process_id=process_id)
  elif num_processes is not None or process_id is not None:
    raise ConfigError('--num_processes and --process_id need --coordinator_address')
  elif dist_config.enabled or all(v in environ for v in SLURM_STEP_VARS):
    args = {}  # jax detects the cluster (SLURM, Cloud TPU, Open MPI, Kubernetes)
  else:
    return None
  args['initialization_timeout'] = dist_config.initialization_timeout
  return args


def initialize(dist_config, coordinator_address=None, num_processes=None, process_id=None):
  """Joins the job if there is one; returns (process_index, process_count).

  Must run before any JAX computation. Processes other than 0 then log warnings
  only, so the job's output is not repeated once per process.
  """
  args = init_args(dist_config, coordinator_address, num_processes, process_id)
  if args is not None and not jax.distributed.is_initialized():
    jax.distributed.initialize(**args)
  if jax.process_index() != 0:
    logging.getLogger('dpfcn_jax').setLevel(logging.WARNING)
  if jax.process_count() > 1:
    log.info('process %d of %d, %d local of %d devices', jax.process_index(),
             jax.process_count(), jax.local_device_count(), jax.device_count())
  return jax.process_index(), jax.process_count()


def initialize_from_flags(dist_config):
  """`initialize` with the values of the flags `define_flags` made."""
  f = flags.FLAGS
  return initialize(dist_config, f.coordinator_address, f.num_processes, f.process_id)
