"""Augmentation moves image and mask together; TTA inverses are exact."""
import jax.numpy as jnp
import numpy as np

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
