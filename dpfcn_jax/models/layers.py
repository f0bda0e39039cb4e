"""Convolution layers shared by every network; Xavier init as in Section II-C."""
import flax.linen as nn
import jax.numpy as jnp

xavier = nn.initializers.xavier_uniform()


class Conv3x3(nn.Module):
  """3x3, stride 1, SAME padding convolution (Table I)."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    return nn.Conv(self.features, (3, 3), padding='SAME', kernel_init=xavier,
                   dtype=self.dtype, name='conv')(x)


class Conv1x1(nn.Module):
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    return nn.Conv(self.features, (1, 1), kernel_init=xavier, dtype=self.dtype,
                   name='conv')(x)


class UpConv2x2(nn.Module):
  """2x2 stride-2 transposed convolution (Table I 'Deconv')."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    return nn.ConvTranspose(self.features, (2, 2), strides=(2, 2), padding='VALID',
                            kernel_init=xavier, dtype=self.dtype, name='conv')(x)


def max_pool2x2(x):
  return nn.max_pool(x, (2, 2), strides=(2, 2))
