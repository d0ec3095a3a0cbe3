"""Tests of truncflow.widgets (the Q = 2 explorer) and its angle convention shared with truncflow.plot."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow.plot import rotation_angle
from truncflow.lie import rotation, rotation_angle as angle
from truncflow.widgets import Explorer

_rot = jax.jit(rotation)
_ang = jax.jit(angle)


# nbs/30_widgets checks the round trip on 32 evenly spaced angles; here random angles, five at a time (one shape,
# one compile).
@given(st.lists(st.floats(-3.1, 3.1), min_size=5, max_size=5))
def test_rotation_angle_round_trip(thetas):
    """rotation -> angle and rotation -> plot.rotation_angle return theta (not -theta); R is in SO(2)."""
    th = np.asarray(thetas)
    R = np.asarray(_rot(jnp.asarray(th)))
    assert np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(2), atol=1e-14) and np.allclose(np.linalg.det(R), 1.0)
    assert np.allclose(np.asarray(_ang(jnp.asarray(R))), th, atol=1e-12)
    for t, Rk in zip(th, R):      # one matrix at a time: no unwrapping across unrelated angles
        assert np.isclose(rotation_angle(Rk), t, atol=1e-12)
    assert np.allclose(R[:, 0], np.stack([np.cos(th), np.sin(th)], 1), atol=1e-15)   # edge R^T e_1 at +theta


# nbs/30_widgets checks a misspelt mode ("genral") and the other bad input of Explorer, preset_data and
# make_flow_step; here the modes that are not strings.
@pytest.mark.parametrize("mode", [None, 1])
def test_explorer_rejects_unknown_mode(mode):
    with pytest.raises(ValueError, match="mode: expected one of"):
        Explorer.from_preset("two clusters", mode=mode)
