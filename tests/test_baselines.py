"""FCN, U-Net and FCN-PP baselines: shapes, registry, dropout, a tiny overfit."""
import functools
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
STEPS = 40


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


def key(seed):
  # XLA:CPU compiles threefry slowly (tens of seconds for a whole init); 'rbg'
  # keys exercise the same code paths in a fraction of that.
  return jax.random.key(seed, impl='rbg')


@functools.cache
def model_and_params(name):
  model = create_model(model_config(name))
  pre, post, _ = toy_pair()
  return model, jax.jit(lambda k: model.init(k, pre, post, train=False))(key(0))


@pytest.mark.parametrize('name', NAMES)
def test_dropout_only_in_train(name):
  model, params = model_and_params(name)
  pre, post, _ = toy_pair()

  @jax.jit  # one compile for all four calls
  def outputs(k1, k2):
    run = lambda train, k: model.apply(params, pre, post, train=train, rngs={'dropout': k})
    return run(True, k1), run(True, k2), run(False, k1), run(False, k2)

  train1, train2, eval1, eval2 = outputs(key(1), key(2))
  assert not np.allclose(train1, train2)
  np.testing.assert_array_equal(eval1, eval2)


@pytest.mark.parametrize('name', NAMES)
def test_overfits_toy_pair(name):
  model, params = model_and_params(name)
  pre, post, label = toy_pair()
  opt = optax.adam(1e-3)

  def loss_fn(p, k, train):
    logits = model.apply(p, pre, post, train=train, rngs={'dropout': k})
    return optax.softmax_cross_entropy_with_integer_labels(logits, label).mean()

  def step(carry, k):
    p, s = carry
    u, s = opt.update(jax.grad(loss_fn)(p, k, True), s, p)
    return (optax.apply_updates(p, u), s), None

  @jax.jit
  def fit(p, k):
    before = loss_fn(p, k, False)
    (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), jax.random.split(k, STEPS))
    return before, loss_fn(p, k, False)

  before, after = fit(params, key(1))
  assert after < 0.5 * before, (before, after)
