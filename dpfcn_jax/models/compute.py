"""How this host computes a network, kept apart from what the network is (config.model).

`config.compute` holds the XLA:CPU workarounds and the dropout bit width; `resolve`
turns it, once at start-up and for the backend at hand, into the one `Policy` value
that every module owning a convolution or a dropout takes. The saved config's
`model` section then describes the network alone, and one checkpoint runs under
whichever policy the host that restores it resolves.
"""
import dataclasses

import jax

from dpfcn_jax.errors import ConfigError

DROPOUT_BITS = (8, 32)


@dataclasses.dataclass(frozen=True)
class Policy:
  """The default is plain flax/XLA: every workaround off, flax's 32-bit dropout."""
  fast_wgrad: bool = False      # conv weight gradients as GEMMs (layers.py)
  winograd: bool = False        # inference: wide 3x3 convs by Winograd F(2x2, 3x3)
  winograd_wgrad: bool = False  # training, with fast_wgrad: weight gradients by Winograd
  dropout_bits: int = 32        # random bits per dropout decision (layers.dropout)

  def for_training(self, train: bool) -> 'Policy':
    """Winograd in the forward pass is for inference only: in a training step it gained
    nothing measurable and raised the peak memory from 3.5 to 5.0 GiB (docs/RESULTS.md)."""
    return dataclasses.replace(self, winograd=False) if train else self


def resolve(compute_config=None, backend=None) -> Policy:
  """The Policy of `compute_config` (None: the plain default) on `backend` (default:
  jax's). The XLA:CPU workarounds are dropped elsewhere: on an H100, cuDNN's own
  weight gradients are 1.46x faster than fast_wgrad's (docs/RESULTS.md), and cuDNN
  chooses its own convolution algorithms."""
  if compute_config is None:
    return Policy()
  fields = {f.name for f in dataclasses.fields(Policy)}
  values = {k: v for k, v in dict(compute_config).items() if k in fields}
  if values.get('dropout_bits', 32) not in DROPOUT_BITS:
    raise ConfigError(f'unknown compute.dropout_bits {values["dropout_bits"]!r}: expected 8 '
                      'or 32')
  if (backend or jax.default_backend()) != 'cpu':
    values.update(fast_wgrad=False, winograd=False, winograd_wgrad=False)
  return Policy(**values)
