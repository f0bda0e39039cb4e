"""DFE-network: the U-Net feature extractor of Section II-A and Table I."""
import flax.linen as nn
import jax.numpy as jnp

from dpfcn_jax.models import layers


class DFE(nn.Module):
  """U-Net giving a `width`-channel map at input resolution (Table I, layers 1-9).

  Two 3x3 conv + ReLU per level, each followed by dropout (Section II-A: "dropout
  after each layer"), widths width * 2**level, 2x2 max-pool down, 2x2 stride-2
  transposed conv up, skip concatenation. Input sides must be multiples of
  2**depth. Table I has no activation after the up-conv; neither has this one.
  """
  width: int = 64
  depth: int = 4
  dropout_rate: float = 0.4
  dtype: jnp.dtype = jnp.float32
  fast_wgrad: bool = True  # layers.py: conv weight gradients as GEMMs
  dropout_bits: int = 8    # layers.dropout: 8 ByteDropout, 32 flax's nn.Dropout
  winograd: bool = False   # layers.Conv3x3: F(2x2, 3x3) where it pays
  winograd_wgrad: bool = False  # layers.Conv3x3: weight gradients by Winograd too

  def _block(self, x, features, train, name):
    for i in range(2):
      x = layers.Conv3x3(features, dtype=self.dtype, fast_wgrad=self.fast_wgrad,
                         winograd=self.winograd, winograd_wgrad=self.winograd_wgrad,
                         name=f'{name}_conv{i}')(x)
      x = nn.relu(x)
      x = layers.dropout(self.dropout_rate, self.dropout_bits)(x, deterministic=not train)
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
      x = layers.UpConv2x2(self.width * 2**level, dtype=self.dtype,
                           fast_wgrad=self.fast_wgrad, name=f'up{level}')(x)
      x = jnp.concatenate([skips[level], x], axis=-1)
      x = self._block(x, self.width * 2**level, train, f'dec{level}')
    return x
