"""scene_map: inference settings resolved and checked once; one mapper for every command."""
import jax
import ml_collections
import numpy as np
import pytest

from dpfcn_jax import checkpoint, scene_map, train_state
from dpfcn_jax.data import synthetic
from dpfcn_jax.errors import ConfigError


def test_infer_settings_fill_fields_older_checkpoints_lack_then_apply_overrides(tiny_config):
  old = tiny_config.to_dict()
  del old['infer']['connectivity'], old['infer']['quicklook_side']
  old = ml_collections.ConfigDict(checkpoint.with_added_fields(old))  # as restores read it
  cfg = scene_map.infer_settings(old, {'stride': 16, 'tta': True})
  assert cfg.connectivity == 4 and cfg.quicklook_side > 0  # today's defaults
  assert (cfg.tile, cfg.stride, cfg.tta) == (tiny_config.infer.tile, 16, True)


@pytest.mark.parametrize('override,words', [
    ({'tile': 30}, 'infer.tile 30 must be a positive multiple of 2**model.depth = 4'),
    ({'stride': 0}, 'infer.stride 0 must be in 1..infer.tile (32)'),
    ({'stride': 40}, 'infer.stride 40'),
    ({'batch_size': 0}, 'infer.batch_size'),
    ({'mc_samples': -1}, 'infer.mc_samples'),
    ({'connectivity': 6}, 'infer.connectivity must be 4 or 8'),
])
def test_infer_settings_that_cannot_map_a_scene_are_rejected(tiny_config, override, words):
  with pytest.raises(ConfigError, match=words.replace('*', r'\*').replace('(', r'\(')
                     .replace(')', r'\)').replace('.', r'\.')):
    scene_map.infer_settings(tiny_config, override)


@pytest.fixture(scope='module')
def mapper(tmp_path_factory):
  from conftest import load_config  # pylint: disable=g-import-not-at-top
  c = load_config('synthetic')
  c.model.width, c.model.jfl_width, c.model.depth, c.data.tile = 4, 4, 2, 32
  c.infer.stride, c.model.keep_prob = 24, 0.9
  workdir = tmp_path_factory.mktemp('work')
  state = train_state.create_train_state(c, jax.random.key(0, impl=c.prng_impl))
  checkpoint.save(checkpoint.manager(str(workdir)), jax.device_get(state), c)
  return scene_map.SceneMapper.restore(str(workdir), overrides={'batch_size': 2})


def test_restored_mapper_streams_what_it_maps_in_memory(mapper):
  s = synthetic.generate_scene(5, 70, 90)
  pre, post = (s[k] / np.float32(255) for k in ('pre', 'post'))
  prob, std = mapper.probability(pre, post)
  assert prob.shape == (70, 90) and not std.any()
  bands = list(mapper.stream(lambda i: (pre[i], post[i]), 70, 90))
  np.testing.assert_array_equal(np.concatenate([b[1] for b in bands]), prob)
  assert [b[0] for b in bands] == sorted(b[0] for b in bands)
  np.testing.assert_array_equal(mapper.lim(prob), prob > 0.5)


def test_with_params_keeps_the_compiled_function(mapper):
  other = mapper.with_params(jax.tree.map(lambda x: x * 0, mapper.params))
  assert other.fn is mapper.fn and other.infer is mapper.infer
  pre = np.zeros((40, 40, 3), np.float32)
  assert np.allclose(other.probability(pre, pre)[0], 0.5)  # zero weights: even softmax


def test_mc_samples_give_an_uncertainty_map(mapper):
  mc = scene_map.SceneMapper.from_params(mapper.model, mapper.params, mapper.config,
                                         {'mc_samples': 3})
  pre = synthetic.generate_scene(6, 40, 40)['pre'] / np.float32(255)
  _, std = mc.probability(pre, pre)
  assert std.max() > 0


def test_best_is_chosen_only_when_asked_for_and_kept(tiny_config, tmp_path):
  tiny_config.select_best = ''
  assert scene_map.which_checkpoint(tiny_config, tmp_path) == 'latest'
  tiny_config.select_best = 'f1'
  assert scene_map.which_checkpoint(tiny_config, tmp_path) == 'latest'
  (tmp_path / 'best').mkdir()
  assert scene_map.which_checkpoint(tiny_config, tmp_path) == 'best'
