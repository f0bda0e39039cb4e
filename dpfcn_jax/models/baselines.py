"""Single-stream deep baselines of Section III-A: FCN, U-Net and FCN-PP.

Paper settings (Section III-A): FCN lr 1e-4, keep prob 0.5; U-net lr 1e-4,
keep prob 0.6; FCN-PP filter size 1x1, lr 1e-4, keep prob 0.6. Dropout rate is
1 - keep_prob (TF1 notation). The paper gives nothing else, so each network is
a reconstruction (shared/notes/baselines.md sections 5-6); every
module says what it chose. All train from scratch (no ImageNet weights) and
share DPFCN's call: `(pre, post, *, train) -> float32 logits (N, H, W, classes)`.
`norm='group'` (beyond the paper, as DPFCN's) puts a GroupNorm between every conv and
its ReLU, so the cross-validated comparison can give every network the same recipe.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models import layers
from dpfcn_jax.models.compute import Policy
from dpfcn_jax.models.dfe import DFE

INPUT_MODES = ('stack', 'diff')
# VGG16 convs per stage; channels are width * VGG_MULT (64-128-256-512-512 at 64).
VGG16_CONVS = (2, 2, 3, 3, 3)
VGG_MULT = (1, 2, 4, 8, 8)
# VGG's fc 4096 = 64 * 64; 16 * width (1024 at 64) trims fc6/fc7 for training from scratch.
FC_MULT = 16
# FCN-8s skips: score pool4 (1/16) and pool3 (1/8), i.e. stage outputs 3 and 2.
FCN_SKIP_STAGES = (3, 2)


def check_input_mode(mode):
  if mode not in INPUT_MODES:
    raise ConfigError(f'unknown model.input_mode {mode!r}: expected {", ".join(INPUT_MODES)}')


def bitemporal_input(pre, post, mode, dtype, multiple, norm='none'):
  """Early fusion of the two dates, each normalised as DPFCN's (layers.normalize_input).

  'stack': channel concatenation (2B bands, FC-EF style); 'diff': |post - pre|
  (B bands; notes section 5: FCN-PP's difference input, without MMR filtering).
  """
  check_input_mode(mode)
  h, w = pre.shape[1:3]
  if h % multiple or w % multiple:
    raise ConfigError(f'input side {h}x{w} is not a multiple of {multiple}')
  if mode == 'diff':  # |post - pre| of the [0, 1] images, then as one image
    return layers.normalize_input(jnp.abs(post.astype(jnp.float32) - pre.astype(jnp.float32)),
                           norm, dtype)
  return jnp.concatenate([layers.normalize_input(x, norm, dtype) for x in (pre, post)], axis=-1)


def vgg_stage(x, features, convs, dtype, compute, name, norm=('none', 4)):
  for i in range(convs):
    x = layers.Conv3x3(features, dtype=dtype, compute=compute, name=f'{name}_conv{i}')(x)
    x = nn.relu(layers.norm(*norm, dtype, f'{name}_norm{i}')(x))
  return x


def _adaptive_weights(size, bins):
  """(bins, size) row-averaging matrix of torch's AdaptiveAvgPool (bin i spans
  floor(i*size/bins) .. ceil((i+1)*size/bins)), so any map size works."""
  m = np.zeros((bins, size), np.float32)
  for i in range(bins):
    lo, hi = (i * size) // bins, -((-(i + 1) * size) // bins)
    m[i, lo:hi] = 1.0 / (hi - lo)
  return m


def adaptive_avg_pool(x, bins):
  h, w = x.shape[1:3]
  mh, mw = (jnp.asarray(_adaptive_weights(s, bins), x.dtype) for s in (h, w))
  return jnp.einsum('ih,jw,nhwc->nijc', mh, mw, x)


def resize_bilinear(x, h, w):
  return jax.image.resize(x, (x.shape[0], h, w, x.shape[3]), 'bilinear')


class FCN(nn.Module):
  """FCN-8s (Long et al.) on a VGG16 stack, trained from scratch; paper keep prob 0.5.

  Choices: VGG16 widths width * (1,2,4,8,8) with max pools; pool5 rounds up
  (ceil mode) so sides need only be multiples of 16, each x2 upsampling being
  cropped to its skip as FCN's crop layer does; fc6 3x3 (VGG's 7x7 would see
  mostly padding on the 4x4 pool5 map of a 128 tile, and 3x3 is the shared
  layer) and fc7 1x1, FC_MULT * width channels, each + ReLU + dropout;
  canonical 1x1 score layers on fc7, pool4 and pool3 fused by addition;
  learned x2 up-convs (the shared 2x2 stride-2 layer) and a fixed bilinear x8,
  like FCN-8s's frozen upscore8.
  `depth` is unused: FCN-8s's five stages are its definition.
  """
  width: int = 64
  dropout_rate: float = 0.5
  input_mode: str = 'stack'
  num_classes: int = 2
  dtype: jnp.dtype = jnp.float32
  input_norm: str = 'none'
  compute: Policy = Policy()
  norm: str = 'none'
  norm_groups: int = 4

  @nn.compact
  def __call__(self, pre, post, *, train: bool):
    x = bitemporal_input(pre, post, self.input_mode, self.dtype,
                         2**(len(VGG16_CONVS) - 1), self.input_norm)
    h, w = x.shape[1:3]
    norm = (self.norm, self.norm_groups)
    pools = []
    for s, (convs, mult) in enumerate(zip(VGG16_CONVS, VGG_MULT)):
      x = vgg_stage(x, self.width * mult, convs, self.dtype, self.compute, f'stage{s}', norm)
      x = nn.max_pool(x, (2, 2), strides=(2, 2), padding='SAME')  # ceil mode
      pools.append(x)
    fc6 = layers.Conv3x3(FC_MULT * self.width, self.dtype, self.compute, name='fc6')
    for conv in (fc6, layers.Conv1x1(FC_MULT * self.width, self.dtype, name='fc7')):
      x = nn.relu(layers.norm(*norm, self.dtype, f'{conv.name}_norm')(conv(x)))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    score = layers.Conv1x1(self.num_classes, dtype=self.dtype, name='score_fr')(x)
    for s in FCN_SKIP_STAGES:
      skip = layers.Conv1x1(self.num_classes, dtype=self.dtype, name=f'score_pool{s + 1}')(
          pools[s])
      up = layers.UpConv2x2(self.num_classes, self.dtype, self.compute,
                            name=f'upscore_pool{s + 1}')(score)
      score = skip + up[:, :skip.shape[1], :skip.shape[2]]
    return resize_bilinear(score, h, w).astype(jnp.float32)


class UNet(nn.Module):
  """Plain U-Net on the fused dates: the DFE (Table I layout, SAME padding,
  dropout after every conv like tf_unet; paper keep prob 0.6) + a 1x1 classifier."""
  width: int = 64
  depth: int = 4
  dropout_rate: float = 0.4
  input_mode: str = 'stack'
  num_classes: int = 2
  dtype: jnp.dtype = jnp.float32
  input_norm: str = 'none'
  compute: Policy = Policy()
  norm: str = 'none'
  norm_groups: int = 4

  @nn.compact
  def __call__(self, pre, post, *, train: bool):
    x = bitemporal_input(pre, post, self.input_mode, self.dtype, 2**self.depth, self.input_norm)
    f = DFE(self.width, self.depth, self.dropout_rate, self.dtype, self.compute, self.norm,
            self.norm_groups, name='unet')(x, train=train)
    return layers.Conv1x1(self.num_classes, dtype=self.dtype, name='classifier')(
        f).astype(jnp.float32)


class FCNPP(nn.Module):
  """FCN-PP (Lei et al. 2019) after the group's FCN_PP_VGG16.py (notes section 6.3).

  VGG16 encoder to 1/16 (skips before each pool); pyramid pooling: adaptive
  average pools into `bins` (2, 4, 8) bins, each a 1x1 conv keeping all
  channels (the paper's "filter size 1x1") + ReLU, bilinear back, concat with
  the map; 3x3 fuse conv + ReLU + dropout (the reference code has none; placed
  as PSPNet does; paper keep prob 0.6); per level bilinear x2, skip concat,
  3x3 conv + ReLU; 1x1 classifier. BatchNorm omitted: the train state keeps no
  batch_stats. `depth` is unused: VGG16's four pools fix the 1/16 encoder.
  """
  width: int = 64
  dropout_rate: float = 0.4
  bins: tuple = (2, 4, 8)
  input_mode: str = 'stack'
  num_classes: int = 2
  dtype: jnp.dtype = jnp.float32
  input_norm: str = 'none'
  compute: Policy = Policy()
  norm: str = 'none'
  norm_groups: int = 4

  @nn.compact
  def __call__(self, pre, post, *, train: bool):
    levels = len(VGG16_CONVS) - 1
    x = bitemporal_input(pre, post, self.input_mode, self.dtype, 2**levels, self.input_norm)
    norm_args = (self.norm, self.norm_groups)
    norm = lambda name: layers.norm(*norm_args, self.dtype, name)
    skips = []
    for s, (convs, mult) in enumerate(zip(VGG16_CONVS, VGG_MULT)):
      if s:
        skips.append(x)
        x = layers.max_pool2x2(x)
      x = vgg_stage(x, self.width * mult, convs, self.dtype, self.compute, f'stage{s}',
                    norm_args)
    h, w, c = x.shape[1:]
    branches = [x]
    for b in self.bins:
      p = layers.Conv1x1(c, dtype=self.dtype, name=f'pool{b}_conv')(adaptive_avg_pool(x, b))
      branches.append(resize_bilinear(nn.relu(norm(f'pool{b}_norm')(p)), h, w))
    x = nn.relu(norm('fuse_norm')(layers.Conv3x3(c, self.dtype, self.compute, name='fuse')(
        jnp.concatenate(branches, axis=-1))))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    # Decoder halves channels per level down to `width` (512-256-128-64-64 at 64).
    for level in reversed(range(levels)):
      skip = skips[level]
      x = resize_bilinear(x, *skip.shape[1:3])
      x = jnp.concatenate([x, skip], axis=-1)
      x = nn.relu(norm(f'dec{level}_norm')(layers.Conv3x3(
          self.width * VGG_MULT[max(level - 1, 0)], self.dtype, self.compute,
          name=f'dec{level}')(x)))
    return layers.Conv1x1(self.num_classes, dtype=self.dtype, name='classifier')(
        x).astype(jnp.float32)


def _common(mc, dtype, compute):
  check_input_mode(mc.input_mode)
  return dict(width=mc.width, dropout_rate=1.0 - mc.keep_prob, input_mode=mc.input_mode,
              num_classes=mc.num_classes, input_norm=mc.input_norm, dtype=dtype,
              compute=compute, norm=mc.norm, norm_groups=mc.norm_groups)


MODELS = {
    'fcn': lambda mc, *a: FCN(**_common(mc, *a)),
    'unet': lambda mc, *a: UNet(**_common(mc, *a), depth=mc.depth),
    'fcnpp': lambda mc, *a: FCNPP(**_common(mc, *a), bins=tuple(int(b) for b in mc.fcnpp_bins)),
}
