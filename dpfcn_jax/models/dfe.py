"""DFE-network: the U-Net feature extractor of Section II-A and Table I."""
import flax.linen as nn
import jax.numpy as jnp

from dpfcn_jax.models import layers
from dpfcn_jax.models.compute import Policy


class DFE(nn.Module):
  """U-Net giving a `width`-channel map at input resolution (Table I, layers 1-9).

  Two 3x3 conv + ReLU per level, each followed by dropout (Section II-A: "dropout
  after each layer"), widths width * 2**level, 2x2 max-pool down, 2x2 stride-2
  transposed conv up, skip concatenation. Input sides must be multiples of
  2**depth. Table I has no activation after the up-conv; neither has this one.
  `norm='group'` (beyond the paper) puts a GroupNorm between each conv and its ReLU.
  """
  width: int = 64
  depth: int = 4
  dropout_rate: float = 0.4
  dtype: jnp.dtype = jnp.float32
  compute: Policy = Policy()
  norm: str = 'none'
  norm_groups: int = 4

  def _block(self, x, features, train, name):
    compute = self.compute.for_training(train)
    for i in range(2):
      x = layers.Conv3x3(features, dtype=self.dtype, compute=compute, name=f'{name}_conv{i}')(x)
      x = nn.relu(layers.norm(self.norm, self.norm_groups, self.dtype, f'{name}_norm{i}')(x))
      x = layers.dropout(self.dropout_rate, compute.dropout_bits)(x, deterministic=not train)
    return x

  @nn.compact
  def __call__(self, x, *, train: bool):
    skips = []
    for level in range(self.depth):
      x = self._block(x, self.width * 2**level, train, f'down{level}')
      skips.append(x)
      x = layers.max_pool2x2(x)
    x = self._block(x, self.width * 2**self.depth, train, 'bottom')
    for level in reversed(range(self.depth)):
      x = layers.UpConv2x2(self.width * 2**level, dtype=self.dtype, compute=self.compute,
                           name=f'up{level}')(x)
      x = jnp.concatenate([skips[level], x], axis=-1)
      x = self._block(x, self.width * 2**level, train, f'dec{level}')
    return x
