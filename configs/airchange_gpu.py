"""AirChange at the paper's width (64) for a GPU/TPU: configs/airchange.py scaled up.

Same final-model protocol as configs/airchange.py (crossval, then train on every
labelled pair to the last step, then eval --split=test where the test pairs are).
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
  c.crossval.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  return c
