"""Coloured maps as in Figs. 3-4: correct change white, unchanged black, missed red,
false detection aqua; and a plain two-colour LIM when no reference exists."""
import numpy as np
from PIL import Image

COLOURS = {'tp': (255, 255, 255), 'tn': (0, 0, 0), 'fn': (255, 0, 0), 'fp': (0, 255, 255)}


def error_map(pred, mask, valid=None):
  """(H, W, 3) uint8 map of the four outcomes; invalid pixels are grey."""
  pred, mask = pred.astype(bool), mask.astype(bool)
  rgb = np.zeros(pred.shape + (3,), np.uint8)
  for key, sel in (('tp', pred & mask), ('fn', ~pred & mask), ('fp', pred & ~mask)):
    rgb[sel] = COLOURS[key]
  if valid is not None:
    rgb[~valid.astype(bool)] = (128, 128, 128)
  return rgb


def lim_map(pred):
  """(H, W, 3) uint8: landslide white on black."""
  return np.repeat((pred.astype(np.uint8) * 255)[..., None], 3, axis=-1)


def save_png(path, rgb):
  Image.fromarray(rgb).save(path)
