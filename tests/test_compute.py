"""models/compute.py: the compute policy is resolved once, per backend, apart from the model."""
import pytest

from conftest import load_config
from dpfcn_jax.errors import ConfigError
from dpfcn_jax.models import compute, create_model


def test_default_config_resolves_to_the_cpu_workarounds_on_cpu_only():
  c = load_config()
  on_cpu = compute.resolve(c.compute, backend='cpu')
  assert on_cpu == compute.Policy(fast_wgrad=True, winograd=True, winograd_wgrad=True,
                                  dropout_bits=8)
  on_gpu = compute.resolve(c.compute, backend='gpu')
  assert on_gpu == compute.Policy(dropout_bits=8)  # cuDNN's own algorithms there
  assert c.compute.fast_wgrad  # the caller's config is left as it was


def test_no_compute_section_is_plain_flax():
  assert compute.resolve(None) == compute.Policy()
  assert compute.Policy().dropout_bits == 32 and not compute.Policy().fast_wgrad


def test_winograd_is_dropped_in_training_steps():
  p = compute.Policy(fast_wgrad=True, winograd=True)
  assert p.for_training(False) is p and not p.for_training(True).winograd
  assert p.for_training(True).fast_wgrad


def test_unknown_dropout_bits_is_a_config_error():
  c = load_config()
  c.compute.dropout_bits = 16
  with pytest.raises(ConfigError, match='compute.dropout_bits 16'):
    compute.resolve(c.compute)


@pytest.mark.parametrize('name', ['dpfcn', 'fcn', 'unet', 'fcnpp'])
def test_every_model_takes_the_policy_and_the_model_config_holds_none(name):
  c = load_config()
  c.model.name = name
  assert not {'fast_wgrad', 'winograd', 'winograd_wgrad', 'dropout_bits'} & set(c.model)
  policy = compute.resolve(c.compute, backend='cpu')
  assert create_model(c.model, policy).compute == policy
