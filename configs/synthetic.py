"""Embedded default: synthetic bitemporal landslide scenes, sized for a 2-core CPU demo.

Same method as configs/default.py; only width, dropout and training length are
cut so train + evaluate finish in minutes without a GPU.
"""
from configs import default


def get_config():
  c = default.get_config()
  c.data.kind = 'synthetic'
  c.model.width = 16
  c.model.keep_prob = 0.9           # at width 16 the paper's 0.6 starves the small net
  c.learning_rate = 1e-3            # the paper's 1e-4 is tuned for 20k+ steps at width 64
  c.num_train_steps = 600
  c.log_every_steps = 50
  c.eval_every_steps = 300
  c.checkpoint_every_steps = 300
  c.data.synthetic.num_scenes.val = 2
  c.data.synthetic.num_scenes.test = 4
  return c
