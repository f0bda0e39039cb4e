"""Sites of a split, and a deterministic, shardable stream of training batches."""
import dataclasses

import numpy as np
import pytest

import fixture_data
from conftest import load_config, real_data
from dpfcn_jax.data import augment, pipeline
from dpfcn_jax.errors import ConfigError


def _sampler(tiny_config, **kw):
  sites = pipeline.load_split(tiny_config.data, 'train')
  return pipeline.BlockSampler(sites, tiny_config.data.tile, tiny_config.seed, **kw)


def test_batches_are_a_pure_function_of_seed_and_step(tiny_config):
  a, b = _sampler(tiny_config), _sampler(tiny_config)
  for key in ('pre', 'post', 'label', 'valid'):
    np.testing.assert_array_equal(a.batch(7, 4)[key], b.batch(7, 4)[key])
  assert not np.array_equal(a.batch(7, 4)['pre'], a.batch(8, 4)['pre'])


def test_each_process_gets_its_slice_of_the_global_batch(tiny_config):
  s = _sampler(tiny_config, sampling='random', photometric=0.5)
  whole = s.batch(3, 4)
  halves = [s.batch(3, 4, process_index=i, process_count=2) for i in range(2)]
  for key in whole:
    np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), whole[key])


def test_grid_epoch_visits_every_block_once(tiny_config):
  s = _sampler(tiny_config, augment_mode='none')
  n = len(s.blocks)
  origins = s._grid_origins(np.arange(n))  # pylint: disable=protected-access
  assert sorted(origins) == sorted(s.blocks)


def test_padded_pixels_are_invalid(tiny_config):
  s = _sampler(tiny_config, augment_mode='none')
  total = sum(v.sum() for *_, v in s.sites)
  scene = sum(site.valid.sum() for site in pipeline.load_split(tiny_config.data, 'train'))
  assert total == scene


@pytest.mark.parametrize('source', ['stand-in', 'real'])
def test_airchange_splits_and_test_crop(tmp_path, source):
  c = load_config('airchange')
  if source == 'real':
    c.data.root = str(real_data('sztaki-airchange'))
  else:
    fixture_data.write_airchange(tmp_path, 64, 96)
    c.data.root, c.data.test_crop = str(tmp_path), (48, 80)  # the real pairs: 952x640
  assert [f.name for f in pipeline.site_folders(c.data, 'val')] == ['szada-7', 'tiszadob-4']
  # The final model (issue 20) trains on every labelled pair, val's too.
  assert len(pipeline.site_folders(c.data, 'train')) == 10
  assert (c.eval_every_steps, c.select_best, c.crossval.eval_every_steps) == (0, '', 250)
  c.data.test_sites = ('val/szada-7',)  # stands in for a held-back test pair
  (site,) = pipeline.load_split(c.data, 'test')
  assert site.pre.shape[:2] == site.mask.shape == tuple(c.data.test_crop)
  if source == 'real':
    assert tuple(c.data.test_crop) == (448, 784)  # the standard crop of the test pairs


@pytest.mark.parametrize('change,match', [
    (lambda c: setattr(c.data, 'root', ''), 'data.root is empty'),
    (lambda c: setattr(c.data, 'kind', 'lidar'), 'unknown data.kind'),
])
def test_contradictory_configs_are_config_errors(change, match):
  c = load_config('airchange')
  change(c)
  with pytest.raises(ConfigError, match=match):
    pipeline.load_split(c.data, 'train')


def test_unknown_split_and_empty_root(tmp_path):
  c = load_config('airchange')
  with pytest.raises(ConfigError, match="unknown split 'dev'"):
    pipeline.load_split(c.data, 'dev')
  c.data.root, c.data.train_sites = str(tmp_path), ()
  with pytest.raises(ConfigError, match='no site folders'):
    pipeline.load_split(c.data, 'train')


def test_positive_fraction_draws_blocks_around_landslides(tiny_config):
  plain = _sampler(tiny_config, sampling='random', augment_mode='none')
  biased = _sampler(tiny_config, sampling='random', augment_mode='none', positive_fraction=0.5)
  share = lambda s: np.mean([s.batch(k, 8)['label'].mean() for k in range(20)])
  assert share(biased) > 1.5 * share(plain)
  batch = biased.batch(0, 8)
  assert all(batch['label'][i].any() for i in range(4))  # the first half is drawn around scars
  halves = [biased.batch(3, 8, process_index=i, process_count=2) for i in range(2)]
  np.testing.assert_array_equal(np.concatenate([h['label'] for h in halves]),
                                biased.batch(3, 8)['label'])


@pytest.mark.parametrize('kw,match', [
    (dict(positive_fraction=0.3), "needs data.sampling = 'random'"),
    (dict(sampling='random', positive_fraction=1.5), r'not in \[0, 1\]'),
])
def test_positive_fraction_errors(tiny_config, kw, match):
  with pytest.raises(ConfigError, match=match):
    _sampler(tiny_config, **kw)


def test_positive_fraction_without_landslides_draws_uniform_blocks(tiny_config, caplog):
  sites = pipeline.load_split(tiny_config.data, 'train')
  empty = [dataclasses.replace(s, mask=np.zeros_like(s.mask)) for s in sites]
  s = pipeline.BlockSampler(empty, tiny_config.data.tile, 0, sampling='random',
                            positive_fraction=0.5)
  assert s.batch(0, 4)['label'].sum() == 0
  assert 'no landslide pixels' in caplog.text


@pytest.mark.parametrize('augment_mode,eight_bit,jitter', [
    ('dihedral', True, augment.Jitter()), ('none', True, augment.Jitter()),
    ('dihedral', False, augment.Jitter()),
    ('dihedral', True, augment.Jitter(scale=0.3, rotate_any=True))])
def test_jitter_by_table_equals_jitter_per_pixel_bit_for_bit(tiny_config, monkeypatch,
                                                            augment_mode, eight_bit, jitter):
  sites = pipeline.load_split(tiny_config.data, 'train')
  if not eight_bit:  # few distinct values, but not k / 255: found by np.unique
    sites = [dataclasses.replace(s, pre=s.pre * np.float32(0.7) + np.float32(0.1),
                                 post=s.post * np.float32(0.6)) for s in sites]
  kw = dict(sampling='random', augment_mode=augment_mode, photometric=0.5,
            positive_fraction=0.25, jitter=jitter)
  make = lambda: pipeline.BlockSampler(sites, tiny_config.data.tile, tiny_config.seed, **kw)
  table = make()
  assert all(t is not None for pair in table.tables for t in pair)
  monkeypatch.setattr(pipeline, 'MAX_TABLE_VALUES', 0)
  direct = make()
  assert all(t is None for pair in direct.tables for t in pair)
  for step in range(6):
    a, b = table.batch(step, 8), direct.batch(step, 8)
    for key in ('pre', 'post', 'label', 'valid'):
      assert a[key].dtype == b[key].dtype
      np.testing.assert_array_equal(a[key], b[key])


def test_batch_is_the_augmented_blocks_of_its_origins(tiny_config):
  # The batch rebuilt from the sampler's own draws with augment's functions, one block
  # at a time: what the sampler computed before it filled preallocated arrays.
  s = _sampler(tiny_config, sampling='random', photometric=0.5)
  batch, t = s.batch(5, 4), tiny_config.data.tile
  rng = np.random.default_rng([s.seed, 1, 5])
  origins = s._random_origins(rng, 4)  # pylint: disable=protected-access
  ks, seeds = rng.integers(0, augment.NUM_DIHEDRAL, 4), rng.integers(0, 2**31, (4, 2))
  for j, ((i, r, c), k, js) in enumerate(zip(origins, ks, seeds)):
    blocks = [x[r:r + t, c:c + t] for x in s.sites[i]]
    for n, key in enumerate(('pre', 'post')):
      jittered = augment.photometric(blocks[n], np.random.default_rng(js[n]), 0.5)
      np.testing.assert_array_equal(batch[key][j], augment.dihedral(jittered, int(k)))
    np.testing.assert_array_equal(batch['label'][j], augment.dihedral(blocks[2], int(k)))
    np.testing.assert_array_equal(batch['valid'][j], augment.dihedral(blocks[3], int(k)))


ALL_JITTER = augment.Jitter(scale=0.3, rotate_any=True, blur=0.5, noise=0.05,
                            histogram_match=0.5)


def test_sampler_of_a_config_without_jitter_draws_the_blocks_of_before(tiny_config):
  d = tiny_config.data
  d.sampling, d.photometric = 'random', 0.3
  plain = _sampler(tiny_config, sampling='random', augment_mode=d.augment, photometric=0.3,
                   positive_fraction=d.positive_fraction)
  assert not pipeline.sampler(pipeline.load_split(tiny_config.data, 'train'),
                              tiny_config).jitter.active
  for step in (0, 5):
    a = pipeline.sampler(pipeline.load_split(tiny_config.data, 'train'), tiny_config)
    for key, value in a.batch(step, 4).items():
      np.testing.assert_array_equal(value, plain.batch(step, 4)[key])
  tiny_config.data.rotate_any = True
  turned = pipeline.sampler(pipeline.load_split(tiny_config.data, 'train'), tiny_config)
  assert turned.jitter == augment.Jitter(rotate_any=True)
  assert not np.array_equal(turned.batch(0, 4)['pre'], plain.batch(0, 4)['pre'])


def test_jittered_batches_are_a_pure_function_of_seed_and_step_and_shard(tiny_config):
  a, b = (_sampler(tiny_config, sampling='random', photometric=0.3, jitter=ALL_JITTER)
          for _ in range(2))
  whole = a.batch(3, 4)
  halves = [b.batch(3, 4, process_index=i, process_count=2) for i in range(2)]
  for key in whole:
    np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), whole[key])
    np.testing.assert_array_equal(b.batch(3, 4)[key], whole[key])
  assert not np.array_equal(a.batch(4, 4)['pre'], whole['pre'])
  assert whole['pre'].dtype == np.float32 and 0 <= whole['pre'].min() <= whole['pre'].max() <= 1


def test_rotated_blocks_mark_pixels_from_outside_the_site_invalid(tiny_config):
  plain = _sampler(tiny_config, sampling='random')
  s = _sampler(tiny_config, sampling='random', jitter=augment.Jitter(rotate_any=True))
  invalid = lambda sampler: np.mean([1 - sampler.batch(k, 8)['valid'].mean() for k in range(6)])
  assert invalid(s) > invalid(plain)  # corners of turned blocks fall off the sites' edges
  for b in (s.batch(k, 8) for k in range(3)):
    assert set(np.unique(b['label'])) <= {0, 1}
    assert (b['valid'] == 0).any()
