"""Tests of truncflow.widgets (the Q = 2 explorer) and its angle convention shared with truncflow.plot."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow.plot import rotation_angle
from truncflow.lie import rotation, rotation_angle as angle
from truncflow.widgets import Explorer, make_flow_step, preset_data

_rot = jax.jit(rotation)
_ang = jax.jit(angle)


@given(st.lists(st.floats(-3.1, 3.1), min_size=1, max_size=8))
def test_rotation_angle_round_trip(thetas):
    """rotation -> angle and rotation -> plot.rotation_angle return theta (not -theta); R is in SO(2)."""
    th = np.asarray(thetas)
    R = np.asarray(_rot(jnp.asarray(th)))
    assert np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(2), atol=1e-14) and np.allclose(np.linalg.det(R), 1.0)
    assert np.allclose(np.asarray(_ang(jnp.asarray(R))), th, atol=1e-12)
    for t, Rk in zip(th, R):      # one matrix at a time: no unwrapping across unrelated angles
        assert np.isclose(rotation_angle(Rk), t, atol=1e-12)
    assert np.allclose(R[:, 0], np.stack([np.cos(th), np.sin(th)], 1), atol=1e-15)   # edge R^T e_1 at +theta


def test_rotation_angle_unwraps_along_time():
    th = np.linspace(-2.0, 11.0, 60)
    assert np.allclose(rotation_angle(np.asarray(_rot(jnp.asarray(th)))), th, atol=1e-12)


@pytest.mark.parametrize("mode", ["genral", "", "Separated", None, 1])
def test_explorer_rejects_unknown_mode(mode):
    with pytest.raises(ValueError, match="mode: expected one of"):
        Explorer.from_preset("two clusters", mode=mode)


def test_explorer_bad_input():
    with pytest.raises(ValueError, match="X:"):
        Explorer(np.zeros((4, 3)), [0, 0, 1, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="targets:"):
        Explorer(np.zeros((4, 2)), [0, 0, 1, 1], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="name: unknown preset"):
        preset_data("moon")
    with pytest.raises(ValueError, match="mode: expected"):
        make_flow_step("other")


