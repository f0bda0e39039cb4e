"""DP-FCN: two DFE paths, feature concatenation, JFL head (Fig. 1, Algorithm I)."""
import flax.linen as nn
import jax.numpy as jnp

from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models.compute import Policy
from dpfcn_jax.models.dfe import DFE
from dpfcn_jax.models.jfl import JFL
from dpfcn_jax.models.layers import normalize_input

FUSIONS = ('concat', 'concat_diff')


class DPFCN(nn.Module):
  """Maps a (pre, post) pair of [0, 1] images (N, H, W, B) to logits (N, H, W, 2).

  `shared_dfe=False` gives the paper's "parallel DFE-networks", one per date;
  True shares one DFE (siamese) and runs both dates through it in one batch.
  `fusion='concat'` is the paper's "concatenate" before the JFL; 'concat_diff' (beyond
  the paper) also feeds |f_pre - f_post|, the change cue of FC-Siam-diff (Daudt et
  al. 2018), so the JFL need not learn a difference from the two maps.
  """
  width: int = 64
  depth: int = 4
  dropout_rate: float = 0.4
  shared_dfe: bool = False
  jfl_width: int = 64
  num_classes: int = 2
  dtype: jnp.dtype = jnp.float32
  input_norm: str = 'none'
  norm: str = 'none'
  norm_groups: int = 4
  fusion: str = 'concat'
  compute: Policy = Policy()  # how this host computes it (models/compute.py)

  @nn.compact
  def __call__(self, pre, post, *, train: bool):
    pre, post = (normalize_input(x, self.input_norm, self.dtype) for x in (pre, post))
    compute = self.compute.for_training(train)
    make_dfe = lambda name: DFE(self.width, self.depth, self.dropout_rate, self.dtype,
                                compute, self.norm, self.norm_groups, name=name)
    if self.shared_dfe:
      f = make_dfe('dfe')(jnp.concatenate([pre, post], axis=0), train=train)
      f_pre, f_post = jnp.split(f, 2, axis=0)
    else:
      f_pre = make_dfe('dfe_pre')(pre, train=train)
      f_post = make_dfe('dfe_post')(post, train=train)
    jfl = JFL(self.jfl_width, self.num_classes, self.dtype, compute, self.norm,
              self.norm_groups, name='jfl')
    if self.fusion not in FUSIONS:
      raise ConfigError(f'unknown model.fusion {self.fusion!r}: expected {", ".join(FUSIONS)}')
    joint = [f_pre, f_post]
    if self.fusion == 'concat_diff':
      joint.append(jnp.abs(f_pre - f_post))
    logits = jfl(jnp.concatenate(joint, axis=-1))
    return logits.astype(jnp.float32)
