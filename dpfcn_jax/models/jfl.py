"""JFL-network: the joint feature learning head of Section II-B and Table I."""
import flax.linen as nn
import jax.numpy as jnp

from dpfcn_jax.models import layers
from dpfcn_jax.models.compute import Policy


class JFL(nn.Module):
  """conv3x3 `width` + ReLU, conv3x3 `width` + ReLU, conv1x1 `num_classes` (Table I).

  Returns logits; the softmax of Eq. (2) and the argmax of Eq. (3) are applied
  by the loss and at inference. The paper puts dropout in the DFE only.
  `norm='group'` (beyond the paper) puts a GroupNorm before each ReLU, as in the DFE.
  """
  width: int = 64
  num_classes: int = 2
  dtype: jnp.dtype = jnp.float32
  compute: Policy = Policy()
  norm: str = 'none'
  norm_groups: int = 4

  @nn.compact
  def __call__(self, f):
    for i in range(2):
      f = layers.Conv3x3(self.width, dtype=self.dtype, compute=self.compute, name=f'conv{i}')(f)
      f = nn.relu(layers.norm(self.norm, self.norm_groups, self.dtype, f'norm{i}')(f))
    return layers.Conv1x1(self.num_classes, dtype=self.dtype, name='classifier')(f)
