"""FCN, U-Net and FCN-PP baselines: shapes, registry, dropout, a tiny overfit."""
import functools
import pathlib
import runpy

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models import baselines, create_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMES = tuple(baselines.MODELS)
WIDTH = 8  # small enough that every test compiles and runs in seconds on CPU
BANDS = 3
SIDE = 32
BLOCK = 8  # label blocks at FCN's finest score resolution (1/8), so all three can fit
STEPS = 80  # with LEARNING_RATE, every model at least halves its loss
LEARNING_RATE = 1e-3  # 10x the paper's 1e-4, so a few dozen steps show progress


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


def output_shape(name, side, **overrides):
  model = create_model(model_config(name, **overrides))
  x = jnp.zeros((2, side, side, BANDS))
  out, _ = jax.eval_shape(
      lambda: model.init_with_output(jax.random.key(0), x, x, train=False))
  return out.shape, out.dtype


@pytest.mark.parametrize('mode', baselines.INPUT_MODES)
@pytest.mark.parametrize('name', NAMES)
def test_output_shape(name, mode):
  assert output_shape(name, SIDE, input_mode=mode) == ((2, SIDE, SIDE, 2), jnp.float32)


@pytest.mark.parametrize('name', NAMES)
def test_side_multiple_of_16_not_32(name):
  # FCN's ceil-mode pool5 and crops, FCN-PP's adaptive bins on a 3x3 map.
  assert output_shape(name, 48) == ((2, 48, 48, 2), jnp.float32)


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
  # XLA:CPU compiles threefry slowly (seconds per initialiser); 'rbg' keys take
  # the same code paths in a fraction of that.
  return jax.random.key(seed, impl='rbg')


@functools.cache
def probe(name):
  """Init, four forward passes and a short Adam fit of one model, in one jit.

  XLA:CPU compiles a backward pass in seconds, so each model is compiled once
  and both tests below read from here; U-Net uses depth 2 for the same reason.
  """
  model = create_model(model_config(name, depth=2))
  pre, post, label = toy_pair()
  opt = optax.adam(LEARNING_RATE)

  def logits(p, k, train):
    return model.apply(p, pre, post, train=train, rngs={'dropout': k})

  @jax.jit
  def run(rng):
    k_init, k_fit = jax.random.split(rng)
    params = model.init(k_init, pre, post, train=False)
    # Adam on one flat vector: far fewer ops to compile than one update per leaf.
    flat, unravel = ravel_pytree(params)
    loss = lambda v, k, train: optax.softmax_cross_entropy_with_integer_labels(
        logits(unravel(v), k, train), label).mean()

    def step(state, k):
      v, s = state
      u, s = opt.update(jax.grad(loss)(v, k, True), s, v)
      return (v + u, s), None

    (fitted, _), _ = jax.lax.scan(step, (flat, opt.init(flat)), jax.random.split(k_fit, STEPS))
    return dict(train=(logits(params, key(1), True), logits(params, key(2), True)),
                eval=(logits(params, key(1), False), logits(params, key(2), False)),
                loss=(loss(flat, rng, False), loss(fitted, rng, False)))

  return jax.device_get(run(key(0)))


@pytest.mark.parametrize('name', NAMES)
def test_dropout_only_in_train(name):
  out = probe(name)
  assert not np.allclose(*out['train'])
  np.testing.assert_array_equal(*out['eval'])


@pytest.mark.parametrize('name', NAMES)
def test_overfits_toy_pair(name):
  before, after = probe(name)['loss']
  assert after < 0.5 * before, (before, after)
