"""Table I: shapes and parameter counts of DFE, JFL and DP-FCN."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config
from dpfcn_jax.models import create_model
from dpfcn_jax.models.compute import Policy
from dpfcn_jax.models.dfe import DFE
from dpfcn_jax.models.dpfcn import DPFCN
from dpfcn_jax.models.jfl import JFL
from dpfcn_jax.errors import ConfigError


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _init_shapes(module, *xs, **kw):
  return jax.eval_shape(lambda: module.init(jax.random.key(0), *xs, **kw))['params']


def test_dfe_width64_parameter_count_is_table1():
  params = _init_shapes(DFE(width=64), jnp.zeros((1, 128, 128, 3)), train=False)
  assert _count(params) == 31_031_680


def test_dfe_table1_layer_widths():
  params = _init_shapes(DFE(width=64), jnp.zeros((1, 128, 128, 3)), train=False)
  widths = {name: p['conv']['kernel'].shape[-1] for name, p in params.items()
            if name.endswith('conv1') or name.startswith('up')}
  assert [widths[f'down{i}_conv1'] for i in range(4)] == [64, 128, 256, 512]
  assert widths['bottom_conv1'] == 1024
  assert [widths[f'dec{i}_conv1'] for i in (3, 2, 1, 0)] == [512, 256, 128, 64]
  assert [widths[f'up{i}'] for i in (3, 2, 1, 0)] == [512, 256, 128, 64]


def test_dfe_output_is_width_channels_at_input_resolution():
  m = DFE(width=8)
  x = jnp.ones((2, 48, 80, 3))
  v = m.init(jax.random.key(0), x, train=False)
  assert m.apply(v, x, train=False).shape == (2, 48, 80, 8)


def test_jfl_head_is_conv64_conv64_conv1x1_2():
  params = _init_shapes(JFL(width=64), jnp.zeros((1, 16, 16, 128)))
  assert [params[k]['conv']['kernel'].shape for k in ('conv0', 'conv1', 'classifier')] == \
      [(3, 3, 128, 64), (3, 3, 64, 64), (1, 1, 64, 2)]


@pytest.mark.parametrize('shared', [False, True])
def test_dpfcn_parallel_or_shared_dfe(shared):
  m = DPFCN(width=8, jfl_width=8, shared_dfe=shared)
  x = jnp.zeros((2, 32, 64, 3))
  params = _init_shapes(m, x, x, train=False)
  one_dfe = _count(_init_shapes(DFE(width=8), x, train=False))
  expected = {'dfe'} if shared else {'dfe_pre', 'dfe_post'}
  assert set(params) == expected | {'jfl'}
  assert _count(params) == (1 if shared else 2) * one_dfe + _count(params['jfl'])


def test_dpfcn_logits_shape_and_dropout_only_in_training():
  m = DPFCN(width=4, depth=2, jfl_width=4, dropout_rate=0.4)
  x1, x2 = jax.random.uniform(jax.random.key(1), (2, 2, 32, 32, 3))
  v = m.init(jax.random.key(0), x1, x2, train=False)
  y = m.apply(v, x1, x2, train=False)
  assert y.shape == (2, 32, 32, 2) and y.dtype == jnp.float32
  np.testing.assert_array_equal(y, m.apply(v, x1, x2, train=False))
  a = m.apply(v, x1, x2, train=True, rngs={'dropout': jax.random.key(1)})
  b = m.apply(v, x1, x2, train=True, rngs={'dropout': jax.random.key(2)})
  assert not np.allclose(a, b)


def test_create_model_from_default_config_is_paper_dpfcn():
  c = load_config()
  m = create_model(c.model)
  assert isinstance(m, DPFCN)
  assert (m.width, m.depth, m.jfl_width, m.shared_dfe) == (64, 4, 64, False)
  assert m.dropout_rate == pytest.approx(0.4)


def test_unknown_model_name_is_a_config_error():
  c = load_config()
  c.model.name = 'resnet'
  with pytest.raises(ConfigError, match='resnet'):
    create_model(c.model)


def test_winograd_is_for_inference_only():
  c = load_config()
  c.model.update(width=64, jfl_width=64, depth=1)  # 32x32 at batch 2: 512 tiles at level 0
  x1, x2 = jax.random.uniform(jax.random.key(1), (2, 2, 32, 32, 3))
  rngs = {'dropout': jax.random.key(2, impl='rbg')}
  out = {}
  for on in (True, False):
    m = create_model(c.model, Policy(fast_wgrad=True, winograd=on))
    v = m.init(jax.random.key(0), x1, x2, train=False)
    out[on] = [jax.jit(functools.partial(m.apply, train=train, rngs=rngs))(v, x1, x2)
               for train in (False, True)]
  # Inference: equal to rounding, but computed differently (so Winograd did run)...
  np.testing.assert_allclose(out[True][0], out[False][0], rtol=1e-4, atol=1e-4)
  assert not np.array_equal(out[True][0], out[False][0])
  # ...and training is untouched by the switch, bit for bit.
  np.testing.assert_array_equal(out[True][1], out[False][1])


def test_winograd_wgrad_changes_only_the_training_gradients():
  c = load_config()
  c.model.update(width=64, jfl_width=64, depth=1, keep_prob=1.0)
  x1, x2 = jax.random.uniform(jax.random.key(1), (2, 2, 32, 32, 3))
  out = {}
  for on in (True, False):
    m = create_model(c.model, Policy(fast_wgrad=True, winograd_wgrad=on))
    v = m.init(jax.random.key(0), x1, x2, train=False)
    loss = lambda p: jnp.sum(m.apply({'params': p}, x1, x2, train=True) ** 2)
    out[on] = (m.apply(v, x1, x2, train=False), jax.jit(jax.grad(loss))(v['params']))
  np.testing.assert_array_equal(out[True][0], out[False][0])
  for a, b in zip(jax.tree.leaves(out[True][1]), jax.tree.leaves(out[False][1])):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * float(jnp.max(jnp.abs(b))))
  kernel = lambda grads: grads['dfe_pre']['down0_conv1']['conv']['kernel']
  assert not np.array_equal(kernel(out[True][1]), kernel(out[False][1]))


@pytest.mark.parametrize('name', ['dpfcn', 'fcn', 'unet', 'fcnpp'])
def test_fast_wgrad_switch_reaches_every_conv_and_keeps_the_gradients(name):
  c = load_config()
  c.model.update(name=name, width=4, depth=2, jfl_width=4, keep_prob=1.0)
  x1, x2 = jax.random.uniform(jax.random.key(1), (2, 1, 16, 16, 3))
  grads = {}
  for fast in (True, False):
    m = create_model(c.model, Policy(fast_wgrad=fast))
    v = m.init(jax.random.key(0), x1, x2, train=False)
    loss = lambda p: jnp.sum(m.apply({'params': p}, x1, x2, train=False) ** 2)
    # The custom VJP shows in the traced program only where the switch got through.
    assert ('custom_vjp_call' in str(jax.make_jaxpr(loss)(v['params']))) == fast
    grads[fast] = jax.grad(loss)(v['params'])
  for a, b in zip(jax.tree.leaves(grads[True]), jax.tree.leaves(grads[False])):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize('name', ['dpfcn', 'fcn', 'unet', 'fcnpp'])
def test_input_norm_tile_reaches_every_model(name):
  """With per-window standardisation an offset of one date's bands changes nothing."""
  c = load_config()
  c.model.update(name=name, width=4, depth=2, jfl_width=4, keep_prob=1.0, input_norm='tile')
  pre, post = jax.random.uniform(jax.random.key(1), (2, 1, 32, 32, 3))
  m = create_model(c.model)
  v = m.init(jax.random.key(0), pre, post, train=False)
  brighter = post + jnp.array([0.1, 0.05, -0.1])
  np.testing.assert_allclose(m.apply(v, pre, post, train=False),
                             m.apply(v, pre, brighter, train=False), rtol=1e-4, atol=1e-4)
  c.model.input_norm = 'none'
  m = create_model(c.model)
  assert not np.allclose(m.apply(v, pre, post, train=False), m.apply(v, pre, brighter, train=False),
                         atol=1e-4)


def test_group_norm_option_adds_a_norm_before_every_relu_and_checks_its_groups():
  c = load_config()
  c.model.update(width=4, depth=2, jfl_width=4, keep_prob=1.0)
  x = jnp.zeros((1, 32, 32, 3))
  plain = _init_shapes(create_model(c.model), x, x, train=False)
  c.model.norm = 'group'
  normed = _init_shapes(create_model(c.model), x, x, train=False)
  added = _count(normed) - _count(plain)
  # scale and bias per channel of every DFE conv (two per level, both dates) and JFL conv.
  per_dfe = 2 * 2 * (4 + 8) + 2 * 2 * 16 + 2 * 2 * (8 + 4)
  assert added == 2 * per_dfe + 2 * 2 * 4
  assert set(normed['jfl']) == {'conv0', 'conv1', 'norm0', 'norm1', 'classifier'}
  m = create_model(c.model)
  v = m.init(jax.random.key(0), x, x, train=False)
  pre = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  out = m.apply(v, pre, pre[::-1], train=False)
  assert out.shape == (2, 32, 32, 2) and np.isfinite(out).all()
  c.model.norm_groups = 3
  with pytest.raises(ConfigError, match='norm_groups 3 does not divide'):
    create_model(c.model).init(jax.random.key(0), x, x, train=False)
  c.model.norm = 'batch'
  with pytest.raises(ConfigError, match="unknown model.norm 'batch'"):
    create_model(c.model).init(jax.random.key(0), x, x, train=False)


def _norm_layers(tree):
  """The GroupNorms in a parameter tree: the modules with a 'scale'."""
  if 'scale' in tree:
    return 1
  return sum(_norm_layers(v) for v in tree.values() if isinstance(v, dict))


@pytest.mark.parametrize('name, norms', [('fcn', 13 + 2), ('unet', 2 * (2 + 1 + 2)),
                                         ('fcnpp', 13 + 3 + 1 + 4)])
def test_group_norm_option_reaches_every_relu_of_the_baselines(name, norms):
  """The comparison gives every network the recipe: a GroupNorm before each ReLU (FCN:
  13 VGG convs, fc6, fc7; U-Net: the DFE's; FCN-PP: VGG, 3 pyramid convs, fuse, decoder)."""
  c = load_config()
  c.model.update(name=name, width=4, depth=2, keep_prob=1.0)
  x = jnp.zeros((1, 32, 32, 3))
  assert _norm_layers(_init_shapes(create_model(c.model), x, x, train=False)) == 0
  c.model.norm = 'group'
  m = create_model(c.model)
  assert _norm_layers(_init_shapes(m, x, x, train=False)) == norms
  pre = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  out = m.apply(m.init(jax.random.key(0), x, x, train=False), pre, pre[::-1], train=False)
  assert out.shape == (2, 32, 32, 2) and np.isfinite(out).all()


def test_concat_diff_fusion_feeds_the_jfl_the_absolute_feature_difference():
  c = load_config()
  c.model.update(width=4, depth=2, jfl_width=4, keep_prob=1.0)
  x = jnp.zeros((1, 32, 32, 3))
  kernel = lambda p: p['jfl']['conv0']['conv']['kernel']
  assert kernel(_init_shapes(create_model(c.model), x, x, train=False)).shape[2] == 8
  c.model.fusion = 'concat_diff'
  m = create_model(c.model)
  v = m.init(jax.random.key(0), x, x, train=False)
  assert kernel(v['params']).shape == (3, 3, 12, 4)  # f_pre, f_post, |f_pre - f_post|
  # Swapping the dates swaps the two maps; the difference is the same.
  pre, post = jax.random.uniform(jax.random.key(1), (2, 2, 32, 32, 3))
  params = dict(v['params'], dfe_post=v['params']['dfe_pre'])  # one DFE for both dates
  w = kernel(params)
  params['jfl'] = {**params['jfl'], 'conv0': {'conv': {
      **params['jfl']['conv0']['conv'], 'kernel': w.at[:, :, 4:8].set(w[:, :, :4])}}}
  np.testing.assert_allclose(m.apply({'params': params}, pre, post, train=False),
                             m.apply({'params': params}, post, pre, train=False), atol=1e-5)
  c.model.fusion = 'sum'
  with pytest.raises(ConfigError, match="unknown model.fusion 'sum'"):
    create_model(c.model).init(jax.random.key(0), x, x, train=False)
