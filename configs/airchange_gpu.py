"""AirChange at the paper's width (64) for a GPU/TPU: configs/airchange.py scaled up.

python -m dpfcn_jax.train --config=configs/airchange_gpu.py --workdir=W
python -m dpfcn_jax.eval --config=configs/airchange_gpu.py --workdir=W --split=val
Not yet trained on a GPU: the one lent so far went to the step benchmarks (docs/RESULTS.md).
"""
from dpfcn_jax import config_files

airchange = config_files.sibling(__file__, 'airchange')


def get_config():
  c = airchange.get_config()
  c.model.width = 64                # [paper] Table I
  c.model.jfl_width = 64            # [paper]
  c.model.keep_prob = 0.6           # [paper]
  c.model.dtype = 'bfloat16'        # mixed precision: f32 parameters, loss and Adam state
  c.learning_rate = 5e-4
  c.batch_size = 32
  c.num_train_steps = 10_000
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  return c
