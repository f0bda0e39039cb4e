"""Model registry: `create_model(config.model)` for every network the harness trains."""
import copy

import jax
import jax.numpy as jnp

from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models.dpfcn import DPFCN


def create_model(model_config):
  """Builds the flax module named by `model_config.name` (see configs/default.py).

  `fast_wgrad`, `winograd` and `winograd_wgrad` work around XLA:CPU's convolutions and
  are dropped on other backends: on an H100, cuDNN's own weight gradients are 1.46x
  faster than fast_wgrad's (docs/RESULTS.md), and cuDNN chooses its own algorithms.
  """
  if jax.default_backend() != 'cpu':
    model_config = copy.deepcopy(model_config)
    model_config.fast_wgrad = model_config.winograd = model_config.winograd_wgrad = False
  dtype = jnp.dtype(model_config.dtype)
  rate = 1.0 - model_config.keep_prob
  if model_config.name == 'dpfcn':
    return DPFCN(width=model_config.width, depth=model_config.depth, dropout_rate=rate,
                 shared_dfe=model_config.shared_dfe, jfl_width=model_config.jfl_width,
                 num_classes=model_config.num_classes, dtype=dtype,
                 fast_wgrad=model_config.fast_wgrad, input_norm=model_config.input_norm,
                 dropout_bits=model_config.dropout_bits, winograd=model_config.winograd,
                 winograd_wgrad=model_config.winograd_wgrad)
  from dpfcn_jax.models import baselines  # pylint: disable=g-import-not-at-top
  if model_config.name in baselines.MODELS:
    return baselines.MODELS[model_config.name](model_config, dtype)
  raise ConfigError(f'unknown model.name {model_config.name!r}: expected dpfcn, '
                    f'{", ".join(baselines.MODELS)}')
