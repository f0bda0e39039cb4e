"""The method comparison (Table IV) on SZTAKI AirChange (configs/airchange.py).

  python -m dpfcn_jax.compare --config=configs/compare_airchange.py \
      --workdir=runs/compare_airchange --split=val

Same methods and per-network overrides as configs/compare_synthetic.py. The
test pairs are held out of the shared data, so the val pairs are the ones
scored here; with select_best on, the networks keep the checkpoint that was
best on those same pairs, so pass --config.select_best= for an unbiased val
table.
"""
from configs import airchange, compare_synthetic


def get_config():
  c = airchange.get_config()
  c.compare = compare_synthetic.compare_section()
  return c
