"""JFL-network: the joint feature learning head of Section II-B and Table I."""
import flax.linen as nn
import jax.numpy as jnp

from dpfcn_jax.models import layers


class JFL(nn.Module):
  """conv3x3 `width` + ReLU, conv3x3 `width` + ReLU, conv1x1 `num_classes` (Table I).

  Returns logits; the softmax of Eq. (2) and the argmax of Eq. (3) are applied
  by the loss and at inference. The paper puts dropout in the DFE only.
  """
  width: int = 64
  num_classes: int = 2
  dtype: jnp.dtype = jnp.float32
  fast_wgrad: bool = True
  winograd: bool = False
  winograd_wgrad: bool = False

  @nn.compact
  def __call__(self, f):
    for i in range(2):
      f = nn.relu(layers.Conv3x3(self.width, dtype=self.dtype, fast_wgrad=self.fast_wgrad,
                                 winograd=self.winograd, winograd_wgrad=self.winograd_wgrad,
                                 name=f'conv{i}')(f))
    return layers.Conv1x1(self.num_classes, dtype=self.dtype, name='classifier')(f)
