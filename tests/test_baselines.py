"""FCN, U-Net and FCN-PP baselines: shapes, registry, dropout, a tiny overfit."""
import pathlib
import runpy

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models import baselines, create_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMES = tuple(baselines.MODELS)
WIDTH = 8  # small enough that every test compiles and runs in seconds on CPU
BANDS = 3
SIDE = 32
BLOCK = 8  # label blocks at FCN's finest score resolution (1/8), so all three can fit


def model_config(name, **overrides):
  cfg = runpy.run_path(str(ROOT / 'configs' / 'default.py'))['get_config']()
  cfg.model.name = name
  cfg.model.width = WIDTH
  cfg.model.update(overrides)
  return cfg.model


def toy_pair(side=SIDE, batch=2, seed=0):
  """Random pre image; post is brighter or darker by block; label 'post brighter'."""
  rng = np.random.default_rng(seed)
  pre = rng.uniform(0.25, 0.75, (batch, side, side, BANDS)).astype(np.float32)
  blocks = rng.integers(0, 2, (batch, side // BLOCK, side // BLOCK))
  label = np.kron(blocks, np.ones((BLOCK, BLOCK), blocks.dtype))
  post = pre + np.where(label, 0.2, -0.2)[..., None].astype(np.float32)
  return jnp.asarray(pre), jnp.asarray(post), jnp.asarray(label)


@pytest.mark.parametrize('side', [SIDE, 48])  # 48: a multiple of 16 but not of 32
@pytest.mark.parametrize('mode', baselines.INPUT_MODES)
@pytest.mark.parametrize('name', NAMES)
def test_output_shape(name, mode, side):
  model = create_model(model_config(name, input_mode=mode))
  x = jnp.zeros((2, side, side, BANDS))
  out, _ = jax.eval_shape(
      lambda: model.init_with_output(jax.random.key(0), x, x, train=False))
  assert out.shape == (2, side, side, 2) and out.dtype == jnp.float32


def test_registry_reads_config():
  model = create_model(model_config('fcnpp', keep_prob=0.5, fcnpp_bins=(1, 3), num_classes=3))
  assert isinstance(model, baselines.FCNPP)
  assert model.dropout_rate == pytest.approx(0.5) and model.bins == (1, 3)
  assert isinstance(create_model(model_config('fcn')), baselines.FCN)
  unet = create_model(model_config('unet', depth=3))
  assert isinstance(unet, baselines.UNet) and unet.depth == 3


def test_config_errors():
  with pytest.raises(ConfigError):
    create_model(model_config('segnet'))
  with pytest.raises(ConfigError):
    create_model(model_config('unet', input_mode='ratio'))
  model = create_model(model_config('unet'))
  x = jnp.zeros((1, 40, 40, BANDS))  # not a multiple of 2**depth
  with pytest.raises(ConfigError):
    jax.eval_shape(lambda: model.init(jax.random.key(0), x, x, train=False))


@pytest.mark.parametrize('name', NAMES)
def test_dropout_only_in_train(name):
  model = create_model(model_config(name))
  pre, post, _ = toy_pair()
  params = jax.jit(lambda: model.init(jax.random.key(0), pre, post, train=False))()
  apply = jax.jit(lambda key, train: model.apply(params, pre, post, train=train,
                                                rngs={'dropout': key}), static_argnums=1)
  a, b = apply(jax.random.key(1), True), apply(jax.random.key(2), True)
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(apply(jax.random.key(1), False),
                                apply(jax.random.key(2), False))


@pytest.mark.parametrize('name', NAMES)
def test_overfits_toy_pair(name):
  model = create_model(model_config(name))
  pre, post, label = toy_pair()
  params = model.init(jax.random.key(0), pre, post, train=False)
  opt = optax.adam(1e-3)

  def loss_fn(p, key=None, train=False):
    logits = model.apply(p, pre, post, train=train, rngs={'dropout': key} if train else None)
    return optax.softmax_cross_entropy_with_integer_labels(logits, label).mean()

  @jax.jit
  def train(p, key):
    def step(carry, k):
      p, s = carry
      g = jax.grad(loss_fn)(p, k, True)
      u, s = opt.update(g, s, p)
      return (optax.apply_updates(p, u), s), None
    (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), jax.random.split(key, 40))
    return p

  before = loss_fn(params)
  after = loss_fn(train(params, jax.random.key(1)))
  assert after < 0.5 * before, (before, after)
