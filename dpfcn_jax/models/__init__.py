"""Model registry: `create_model(config.model, policy)` for every network the harness trains."""
import jax.numpy as jnp

from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models.compute import Policy
from dpfcn_jax.models.dpfcn import DPFCN


def create_model(model_config, compute: Policy = Policy()):
  """Builds the flax module named by `model_config.name` (see configs/default.py),
  computed as `compute` says (models/compute.py: `resolve(config.compute)`)."""
  dtype = jnp.dtype(model_config.dtype)
  rate = 1.0 - model_config.keep_prob
  if model_config.name == 'dpfcn':
    return DPFCN(width=model_config.width, depth=model_config.depth, dropout_rate=rate,
                 shared_dfe=model_config.shared_dfe, jfl_width=model_config.jfl_width,
                 num_classes=model_config.num_classes, dtype=dtype,
                 input_norm=model_config.input_norm, norm=model_config.norm,
                 norm_groups=model_config.norm_groups, fusion=model_config.fusion,
                 compute=compute)
  from dpfcn_jax.models import baselines  # pylint: disable=g-import-not-at-top
  if model_config.name in baselines.MODELS:
    return baselines.MODELS[model_config.name](model_config, dtype, compute)
  raise ConfigError(f'unknown model.name {model_config.name!r}: expected dpfcn, '
                    f'{", ".join(baselines.MODELS)}')
