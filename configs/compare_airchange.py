"""The method comparison (Table IV) on SZTAKI AirChange (configs/airchange.py).

  python -m dpfcn_jax.compare --config=configs/compare_airchange.py \
      --workdir=runs/compare_airchange --split=val

Same methods and per-network overrides as configs/compare_synthetic.py (both from
configs/default.py). The test pairs are held out of the shared data, so the val
pairs are scored here: the networks train on the 8 train pairs only, to their last
step. Two pairs decide little; `python -m dpfcn_jax.crossval --methods=...` with this
config compares every method on folds of all 10 labelled pairs (docs/RESULTS.md).
"""
from dpfcn_jax import config_files

airchange = config_files.sibling(__file__, 'airchange')


def get_config():
  c = airchange.get_config()
  c.data.train_sites, c.data.val_sites = airchange.TRAIN, airchange.VAL
  return c
