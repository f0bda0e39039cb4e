"""The method comparison (Table IV) on SZTAKI AirChange (configs/airchange.py).

  python -m dpfcn_jax.compare --config=configs/compare_airchange.py \
      --workdir=runs/compare_airchange --split=val

Same methods and per-network overrides as configs/compare_synthetic.py (both from
configs/default.py). The test pairs are held out of the shared data, so the val
pairs are the ones scored here; with select_best on, the networks keep the
checkpoint that was best on those same pairs, so pass --config.select_best= for
an unbiased val table.
"""
from dpfcn_jax import config_files

airchange = config_files.sibling(__file__, 'airchange')


def get_config():
  return airchange.get_config()
