"""The paper's Lantau Island sites A-M (Table III): train A-E, test F-M.

The data are not public: set --config.data.root to a folder holding
train/{A..E} and test/{F..M}, each with pre/post/mask images.
"""
from dpfcn_jax import config_files

default = config_files.sibling(__file__, 'default')


def get_config():
  c = default.get_config()
  c.data.kind = 'files'
  c.data.root = ''
  c.data.train_sites = tuple(f'train/{s}' for s in 'ABCDE')
  c.data.val_sites = ('train/E',)   # the paper names no validation site
  c.data.test_sites = tuple(f'test/{s}' for s in 'FGHIJKLM')
  return c
