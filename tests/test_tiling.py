"""Windows, padding and blending: the scene covered, content kept, no seams."""
import numpy as np
import pytest

from dpfcn_jax.data import tiling


@pytest.mark.parametrize('length,tile,stride', [(100, 128, 96), (128, 128, 96), (129, 128, 96),
                                                (1000, 128, 128), (777, 64, 48)])
def test_windows_cover_the_scene(length, tile, stride):
  starts = tiling.window_starts(length, tile, stride)
  assert starts[0] == 0 and starts[-1] + tile >= length
  assert all(b - a == stride for a, b in zip(starts, starts[1:]))
  assert starts[-1] + tile == tiling.padded_size(length, tile, stride)


def test_blend_weight_is_smooth_positive_and_symmetric():
  w = tiling.blend_weight(128, 32)
  assert w.min() > 0 and w.max() == pytest.approx(1.0)
  np.testing.assert_allclose(w, w.T)
  np.testing.assert_allclose(w, w[::-1, ::-1])
  assert np.abs(np.diff(w[64])).max() < 0.1  # no step anywhere


def test_mirror_padding_keeps_content():
  a = np.arange(12.0).reshape(3, 4)
  p = tiling.pad_to(a, 5, 6)
  np.testing.assert_array_equal(p[:3, :4], a)
  np.testing.assert_array_equal(p[3, :4], a[2])  # mirrored, not zeros
