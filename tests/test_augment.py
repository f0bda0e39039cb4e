"""Augmentation moves image and mask together; TTA inverses are exact; the jitters
beyond the paper warp, match and degrade as documented."""
import jax.numpy as jnp
import numpy as np
import pytest

from dpfcn_jax.data import augment


def test_dihedral_group_has_eight_distinct_elements_and_inverses():
  x = np.arange(12.0).reshape(3, 4)
  images = [augment.dihedral(x, k) for k in range(8)]
  assert len({im.tobytes() + bytes(im.shape) for im in images}) == 8
  for k in range(8):
    np.testing.assert_array_equal(augment.inverse_dihedral(images[k], k), x)


def test_image_and_mask_move_together():
  rng = np.random.default_rng(0)
  image = rng.random((16, 16, 3))
  mask = (image[..., 0] > 0.5).astype(np.uint8)
  for k in range(8):
    a, m = augment.dihedral(image, k), augment.dihedral(mask, k)
    np.testing.assert_array_equal(m, (a[..., 0] > 0.5).astype(np.uint8))


def test_jax_and_numpy_agree_on_batched_axes():
  x = np.random.default_rng(1).random((2, 8, 8, 3)).astype(np.float32)
  for k in range(8):
    np.testing.assert_array_equal(np.asarray(augment.dihedral(jnp.asarray(x), k, axes=(1, 2))),
                                  augment.dihedral(x, k, axes=(1, 2)))


def test_photometric_jitter_is_bounded_and_off_at_zero():
  x = np.random.default_rng(2).random((8, 8, 3)).astype(np.float32)
  np.testing.assert_array_equal(augment.photometric(x, np.random.default_rng(0), 0.0), x)
  y = augment.photometric(x, np.random.default_rng(0), 1.0)
  assert y.dtype == x.dtype and y.min() >= 0 and y.max() <= 1 and not np.allclose(x, y)


def _site(h=60, w=70, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.uniform(0, 1, (h, w, 3)).astype(np.float32),
          (rng.uniform(0, 1, (h, w)) > 0.7).astype(np.uint8))


def test_warp_at_scale_one_and_no_angle_is_the_plain_block():
  image, mask = _site()
  window, rows, cols = augment.warp_window(mask.shape, (10 + 16, 20 + 16), 32, 1.0, 0.0)
  r = augment.Resample(mask[window].shape, rows, cols)
  np.testing.assert_array_equal(r.linear(image[window]), image[10:42, 20:52])
  np.testing.assert_array_equal(r.nearest(mask[window]), mask[10:42, 20:52])


def test_warp_by_a_right_angle_is_rot90_and_outside_pixels_are_zero():
  image, mask = _site()
  window, rows, cols = augment.warp_window(mask.shape, (30, 35), 32, 1.0, np.pi / 2)
  r = augment.Resample(mask[window].shape, rows, cols)
  block = r.nearest(mask[window])
  plain = mask[14:46, 19:51]
  assert any(np.array_equal(block, np.rot90(plain, k)) for k in (1, 3))
  # A block centred on the corner: three quarters lie outside the array.
  window, rows, cols = augment.warp_window(mask.shape, (0, 0), 32, 1.0, 0.3)
  ones = np.ones(mask[window].shape, bool)
  valid = augment.Resample(ones.shape, rows, cols).nearest(ones)
  assert valid.dtype == bool and 0.15 < valid.mean() < 0.35


def test_scale_zooms_out_and_every_block_parameter_is_seeded():
  x = augment.Jitter(scale=0.5, rotate_any=True)
  draws = [augment.warp_params(np.random.default_rng(s), x) for s in range(200)]
  scales = np.array([d[0] for d in draws])
  assert scales.min() >= 1 / 1.5 - 1e-9 and scales.max() <= 1.5 + 1e-9
  assert np.mean(scales > 1) == pytest.approx(0.5, abs=0.15)  # log-uniform about 1
  assert draws == [augment.warp_params(np.random.default_rng(s), x) for s in range(200)]
  assert augment.warp_params(np.random.default_rng(0), augment.Jitter()) == (1.0, 0.0)
  assert not augment.Jitter().active and augment.Jitter(noise=0.1).active


def test_histogram_matching_takes_the_reference_values_in_the_source_order():
  source, _ = _site(seed=1)
  reference = (source ** 3 * 0.5).astype(np.float32)[::-1]
  valid = np.ones(source.shape[:2], np.float32)
  valid[:5] = 0
  out = augment.match_histograms(source, reference, valid)
  keep = valid > 0
  for b in range(3):
    np.testing.assert_array_equal(np.sort(out[..., b][keep]), np.sort(reference[..., b][keep]))
    order = np.argsort(source[..., b][keep], kind='stable')
    assert np.all(np.diff(out[..., b][keep][order]) >= 0)  # ranks kept
  np.testing.assert_array_equal(out[:5], source[:5])  # invalid pixels untouched


def test_blur_and_noise_keep_shape_dtype_and_range():
  image, _ = _site()
  blurred = augment.blur(image, 1.0)
  assert blurred.shape == image.shape and blurred.dtype == np.float32
  assert blurred.std() < image.std()
  noisy = augment.add_noise(image, np.random.default_rng(0), 0.5)
  assert noisy.dtype == np.float32 and noisy.min() >= 0 and noisy.max() <= 1
  assert not np.array_equal(noisy, image)
