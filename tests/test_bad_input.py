"""Every public name of truncflow refuses bad input with a ValueError naming the argument.

The table below maps each name of `truncflow.PUBLIC_API` to a good call and to bad variants of it;
the test walks `PUBLIC_API`, so a new public name without a row fails. A variant marked `jit` has a
wrong shape and must also be refused under `jax.jit`, at trace time (shapes are static). The other
variants (non-finite values, a non-orthogonal R, a singular W, labels out of range, non-positive
step sizes and counts) need concrete arrays. Names that take no input (constants, result types)
are listed in DATA. Arrays are tiny (Q = 2, N = 4, L = 2): the point is the error, not the result.
"""

import re
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest

import truncflow as tf
from truncflow.lie import rotation

Q, N, L = 2, 4, 2
KEY = jax.random.PRNGKey(0)
R = np.asarray(rotation(0.3))
R_BAD = 2.0 * R  # not orthogonal
W_SING = np.array([[1.0, 1.0], [1.0, 1.0]])  # singular
BETA = np.array([0.1, -0.2])
X = np.array([[1.0, 0.5], [1.2, 0.4], [-1.0, 0.6], [-1.1, 0.3]])
X_NAN = X.copy()
X_NAN[1, 0] = np.nan
X3 = np.ones((N, 3))  # points of the wrong dimension
Y_T = np.array([0.5, 0.2])
LABELS = np.array([0, 0, 1, 1])
LABELS_7 = np.array([0, 0, 1, 7])  # label 7 of J = 2 classes
YS = np.array([[0.5, 0.2], [-0.4, 0.3]])  # (J, Q) targets
WS = np.stack([np.array([[1.2, 0.1], [-0.2, 0.9]]), np.array([[0.8, -0.3], [0.2, 1.1]])])
BS = np.array([[0.1, -0.1], [0.2, 0.05]])
WS_SING = np.stack([WS[0], W_SING])
RS = np.stack([R, np.asarray(rotation(-0.5))])
RS_BAD = np.stack([R, R_BAD])
BETAS = np.array([[0.1, -0.2], [-0.3, 0.1]])
W_OUT, B_OUT = 1.5 * np.eye(Q), np.zeros(Q)
FIELD = lambda R, x: (jnp.zeros_like(R), -x)  # a vector field for the RKMK steps
STEP = lambda R, x, h: (R, x - h * x)
VEL = tf.separated_velocity
TMP = "<a temporary directory>"


def _member(**kw):
    p = dict(R0=R, beta0=BETA, X=X, y_tilde=Y_T, h=np.asarray(0.05), rotate=np.asarray(1.0))
    return {k: jnp.asarray(v) for k, v in dict(p, **kw).items()}


def _general_member(**kw):
    p = dict(Rs0=RS, betas0=BETAS, X=X, labels=LABELS, Y_tilde=YS, h=np.asarray(0.05))
    return {k: jnp.asarray(v) for k, v in dict(p, **kw).items()}


class Call:
    """f(*args, **kw); `arg` names the argument a bad call must name; `jit`: also under jax.jit
    (every positional argument is then an array)."""

    def __init__(self, f, *args, arg=None, jit=False, **kw):
        self.f, self.args, self.kw, self.arg, self.jit = f, args, kw, arg, jit

    def __call__(self):
        return self.f(*self.args, **self.kw)

    def jitted(self):
        return jax.jit(partial(self.f, **self.kw))(*self.args)


def good(f, *args, **kw):
    return Call(f, *args, **kw)


def bad(arg, f, *args, jit=False, **kw):
    return Call(f, *args, arg=arg, jit=jit, **kw)


def sep(f, name="R"):
    """Rows shared by the one-cluster functions f(R, beta, X, y_tilde)."""
    return [
        good(f, R, BETA, X, Y_T),
        bad("X", f, R, BETA, X3, Y_T, jit=True),
        bad("beta", f, R, BETA[:1], X, Y_T, jit=True),
        bad("y_tilde", f, R, BETA, X, np.ones(3), jit=True),
        bad(name, f, np.ones((2, 3)), BETA, X, Y_T, jit=True),
        bad(name, f, R_BAD, BETA, X, Y_T),
        bad("X", f, R, BETA, X_NAN, Y_T),
    ]


def gen(f, ens=False):
    """Rows shared by the general-flow functions f(Rs, betas, X, labels, Y_tilde)."""
    rs, bt = (RS[None], BETAS[None]) if ens else (RS, BETAS)
    return [
        good(f, rs, bt, X, LABELS, YS),
        bad("X", f, rs, bt, X3, LABELS, YS, jit=True),
        bad("labels", f, rs, bt, X, LABELS[:3], YS, jit=True),
        bad("Y_tilde", f, rs, bt, X, LABELS, np.ones((2, 3)), jit=True),
        bad("Rs", f, 2.0 * rs, bt, X, LABELS, YS),
        bad("labels", f, rs, bt, X, LABELS_7, YS),
        bad("X", f, rs, bt, X_NAN, LABELS, YS),
    ]


def truncation_rows(f, name="W", singular=True):
    """Rows shared by f(W, beta, x)."""
    rows = [
        good(f, WS[0] if name == "W" else R, BETA, X),
        bad("x", f, R, BETA, X3, jit=True),
        bad("beta", f, R, np.ones(3), X, jit=True),
        bad(name, f, np.ones((2, 3)), BETA, X, jit=True),
        bad("x", f, R, BETA, X_NAN),
    ]
    if singular:
        rows.append(bad(name, f, W_SING, BETA, X))
    if name == "R":
        rows.append(bad("R", f, R_BAD, BETA, X))
    return rows


def cumulative_rows(f, nW="Wc", nb="betas", singular=True):
    """Rows shared by f(Wc, betas, x)."""
    rows = [
        good(f, WS, BS, X),
        bad("x", f, WS, BS, X3, jit=True),
        bad(nb, f, WS, BS[:1], X, jit=True),
        bad(nW, f, WS[0], BS, X, jit=True),
        bad("x", f, WS, BS, X_NAN),
    ]
    if singular:
        rows.append(bad(nW, f, WS_SING, BS, X))
    return rows


TABLE = {
    # -- network
    "random_network": [
        good(tf.random_network, KEY, Q, L),
        bad("Q", tf.random_network, KEY, 0, L),
        bad("L", tf.random_network, KEY, Q, -1),
        bad("smin", tf.random_network, KEY, Q, L, smin=-1.0),
    ],
    "random_orthogonal": [
        good(tf.random_orthogonal, KEY, Q),
        bad("Q", tf.random_orthogonal, KEY, 0),
        bad("batch", tf.random_orthogonal, KEY, Q, batch=(-1,)),
    ],
    "cumulative_parameters": [
        good(tf.cumulative_parameters, WS, BS),
        bad("bs", tf.cumulative_parameters, WS, np.ones((L, 3)), jit=True),
        bad("Ws", tf.cumulative_parameters, np.ones((L, 2, 3)), BS, jit=True),
        bad("Ws", tf.cumulative_parameters, WS_SING, BS),
        bad("bs", tf.cumulative_parameters, WS, np.full((L, Q), np.inf)),
    ],
    "layer_parameters": [
        good(tf.layer_parameters, WS, BS),
        bad("bc", tf.layer_parameters, WS, BS[:1], jit=True),
        bad("Wc", tf.layer_parameters, WS[0], BS, jit=True),
        bad("Wc", tf.layer_parameters, WS_SING, BS),
    ],
    "hidden_layers": cumulative_rows(tf.hidden_layers, "Ws", "bs", singular=False),
    "hidden_layers_from_truncations": cumulative_rows(tf.hidden_layers_from_truncations),
    "network_output": [
        good(tf.network_output, WS, BS, W_OUT, B_OUT, X),
        bad("x", tf.network_output, WS, BS, W_OUT, B_OUT, X3, jit=True),
        bad("W_out", tf.network_output, WS, BS, np.ones((3, 2)), B_OUT, X, jit=True),
        bad("b_out", tf.network_output, WS, BS, W_OUT, np.ones(3), X, jit=True),
        bad("bs", tf.network_output, WS, BS[:1], W_OUT, B_OUT, X, jit=True),
        bad("x", tf.network_output, WS, BS, W_OUT, B_OUT, X_NAN),
    ],
    "truncation_map": truncation_rows(tf.truncation_map),
    "orthogonal_truncation_map": truncation_rows(tf.orthogonal_truncation_map, "R", False),
    "composed_truncation": cumulative_rows(tf.composed_truncation),
    "truncation_state": truncation_rows(tf.truncation_state),
    "clustered_data": [
        good(tf.clustered_data, KEY, YS, 3),
        bad("sizes", tf.clustered_data, KEY, YS, [3]),
        bad("sizes", tf.clustered_data, KEY, YS, -3),
        bad("radius", tf.clustered_data, KEY, YS, 3, radius=-1.0),
        bad("centers", tf.clustered_data, KEY, np.full((2, 2), np.nan), 3),
    ],
    "input_space_cost": [
        good(tf.input_space_cost, WS, BS, X, LABELS, YS),
        bad("X", tf.input_space_cost, WS, BS, X3, LABELS, YS, jit=True),
        bad("labels", tf.input_space_cost, WS, BS, X, LABELS[:3], YS, jit=True),
        bad("Y_tilde", tf.input_space_cost, WS, BS, X, LABELS, np.ones((2, 3)), jit=True),
        bad("labels", tf.input_space_cost, WS, BS, X, LABELS_7, YS),
        bad("Wc", tf.input_space_cost, WS_SING, BS, X, LABELS, YS),
    ],
    "standard_cost": [
        good(tf.standard_cost, WS, BS, W_OUT, B_OUT, X, LABELS, YS),
        bad("X", tf.standard_cost, WS, BS, W_OUT, B_OUT, X3, LABELS, YS, jit=True),
        bad("Y", tf.standard_cost, WS, BS, W_OUT, B_OUT, X, LABELS, np.ones((2, 3)), jit=True),
        bad("labels", tf.standard_cost, WS, BS, W_OUT, B_OUT, X, LABELS[:3], YS, jit=True),
        bad("labels", tf.standard_cost, WS, BS, W_OUT, B_OUT, X, LABELS_7, YS),
        bad("X", tf.standard_cost, WS, BS, W_OUT, B_OUT, X_NAN, LABELS, YS),
    ],
    "pulled_back_targets": [
        good(tf.pulled_back_targets, W_OUT, YS),
        bad("Y", tf.pulled_back_targets, W_OUT, np.ones((2, 3)), jit=True),
        bad("W_tot", tf.pulled_back_targets, np.ones((2, 3)), YS, jit=True),
        bad("W_tot", tf.pulled_back_targets, W_SING, YS),
    ],
    # -- lie
    "skew": [
        good(tf.skew, R),
        bad("A", tf.skew, np.ones((2, 3)), jit=True),
        bad("A", tf.skew, np.full((2, 2), np.nan)),
    ],
    "expm": [
        good(tf.expm, tf.skew(R)),
        bad("A", tf.expm, np.ones((2, 3)), jit=True),
        bad("A", tf.expm, np.full((2, 2), np.inf)),
        bad("order", tf.expm, tf.skew(R), order=0),
    ],
    "haar_orthogonal": [
        good(tf.haar_orthogonal, KEY, Q),
        bad("Q", tf.haar_orthogonal, KEY, 0),
        bad("Q", tf.haar_orthogonal, KEY, 2.5),
        bad("batch", tf.haar_orthogonal, KEY, Q, batch=(-2,)),
    ],
    "autodiff_velocity": [
        good(tf.autodiff_velocity, tf.separated_cost),
        bad("cost", tf.autodiff_velocity, 3.0),
    ],
    "rotation": [
        good(tf.rotation, 0.3),
        bad("theta", tf.rotation, np.nan),
        bad("theta", tf.rotation, "0.3"),
    ],
    # -- solvers
    "rkmk_step": [
        good(tf.rkmk_step, FIELD, tf.TABLEAUS["rkmk4"], R, BETA, 0.1),
        bad("tableau", tf.rkmk_step, FIELD, "rkmk4", R, BETA, 0.1),
        bad("field", tf.rkmk_step, None, tf.TABLEAUS["rkmk4"], R, BETA, 0.1),
        bad("R", partial(tf.rkmk_step, FIELD, tf.TABLEAUS["rkmk4"]), np.ones((2, 3)), BETA, 0.1,
            jit=True),
        bad("h", tf.rkmk_step, FIELD, tf.TABLEAUS["rkmk4"], R, BETA, -0.1),
        bad("h", tf.rkmk_step, FIELD, tf.TABLEAUS["rkmk4"], R, BETA, np.nan),
        bad("R", tf.rkmk_step, FIELD, tf.TABLEAUS["rkmk4"], R_BAD, BETA, 0.1),
    ],
    "fixed_steps": [
        good(tf.fixed_steps, STEP, R, BETA, 0.1, 4),
        bad("n_steps", tf.fixed_steps, STEP, R, BETA, 0.1, -3),
        bad("h", tf.fixed_steps, STEP, R, BETA, -0.1, 4),
        bad("save_every", tf.fixed_steps, STEP, R, BETA, 0.1, 4, save_every=0),
        bad("step", tf.fixed_steps, None, R, BETA, 0.1, 4),
    ],
    # -- moments
    "cluster_moments": truncation_rows(tf.cluster_moments, "R", False)[:1]
    + [
        bad("X", tf.cluster_moments, R, BETA, X3, jit=True),
        bad("beta", tf.cluster_moments, R, np.ones(3), X, jit=True),
        bad("R", tf.cluster_moments, R_BAD, BETA, X),
        bad("X", tf.cluster_moments, R, BETA, X_NAN),
    ],
    "sector_moments": [
        good(tf.sector_moments, R, BETA, X),
        bad("X", tf.sector_moments, R, BETA, X3),
        bad("beta", tf.sector_moments, R, np.ones(3), X),
        bad("R", tf.sector_moments, R_BAD, BETA, X),
        bad("X", tf.sector_moments, R, BETA, X_NAN),
    ],
    # -- separated
    "separated_cost": sep(tf.separated_cost),
    "separated_velocity": sep(tf.separated_velocity),
    "separated_velocity_autodiff": sep(tf.separated_velocity_autodiff),
    "separated_velocity_ensemble": [
        good(tf.separated_velocity_ensemble, R[None], BETA[None], X, Y_T),
        bad("X", tf.separated_velocity_ensemble, R[None], BETA[None], X3, Y_T, jit=True),
        bad("beta", tf.separated_velocity_ensemble, R[None], BETA, X, Y_T, jit=True),
        bad("R", tf.separated_velocity_ensemble, R, BETA[None], X, Y_T, jit=True),
        bad("y_tilde", tf.separated_velocity_ensemble, R[None], BETA[None], X, np.ones(3),
            jit=True),
        bad("R", tf.separated_velocity_ensemble, R_BAD[None], BETA[None], X, Y_T),
        bad("X", tf.separated_velocity_ensemble, R[None], BETA[None], X_NAN, Y_T),
    ],
    "bias_velocity": sep(tf.bias_velocity),
    "omega": sep(tf.omega),
    # -- integrate
    "integrate_separated": [
        bad("X", tf.integrate_separated, R, BETA, X3, Y_T, (0.0, 1.0)),
        bad("R0", tf.integrate_separated, R_BAD, BETA, X, Y_T, (0.0, 1.0)),
        bad("t_span", tf.integrate_separated, R, BETA, X, Y_T, (1.0, 0.0)),
        bad("n_save", tf.integrate_separated, R, BETA, X, Y_T, (0.0, 1.0), n_save=-3),
    ],
    "fixed_step": [
        good(tf.fixed_step, VEL, R, BETA, X, Y_T, 0.1, 4),
        bad("n_steps", tf.fixed_step, VEL, R, BETA, X, Y_T, 0.1, -3),
        bad("h", tf.fixed_step, VEL, R, BETA, X, Y_T, -0.1, 4),
        bad("X", tf.fixed_step, VEL, R, BETA, X3, Y_T, 0.1, 4),
        bad("R0", tf.fixed_step, VEL, R_BAD, BETA, X, Y_T, 0.1, 4),
        bad("X", tf.fixed_step, VEL, R, BETA, X_NAN, Y_T, 0.1, 4),
    ],
    "fixed_R_velocity": sep(tf.fixed_R_velocity),
    # -- orbits
    "truncation_times": [
        good(tf.truncation_times, X[:, 0], 0.5, -0.2),
        bad("x", tf.truncation_times, X, 0.5, -0.2),
        bad("y", tf.truncation_times, X[:, 0], np.ones(2), -0.2),
        bad("x", tf.truncation_times, X_NAN[:, 0], 0.5, -0.2),
    ],
    "exact_bias": [
        good(tf.exact_bias, X[:, 0], 0.5, -0.2, np.array([0.0, 1.0])),
        bad("s", tf.exact_bias, X[:, 0], 0.5, -0.2, np.array([-1.0])),
        bad("b0", tf.exact_bias, X[:, 0], 0.5, np.nan, np.array([1.0])),
    ],
    "exact_fixed_R_bias": [
        good(tf.exact_fixed_R_bias, R, BETA, X, Y_T, np.array([0.0, 1.0])),
        bad("s", tf.exact_fixed_R_bias, R, BETA, X, Y_T, np.array([-1.0])),
        bad("R", tf.exact_fixed_R_bias, R_BAD, BETA, X, Y_T, np.array([1.0])),
        bad("X", tf.exact_fixed_R_bias, R, BETA, X3, Y_T, np.array([1.0])),
    ],
    "fixed_R_events": [
        good(tf.fixed_R_events, R, BETA, X, Y_T),
        bad("R", tf.fixed_R_events, R_BAD, BETA, X, Y_T),
        bad("beta0", tf.fixed_R_events, R, np.ones(3), X, Y_T),
        bad("X", tf.fixed_R_events, R, BETA, X_NAN, Y_T),
    ],
    "prop42_example": [
        good(tf.prop42_example, n_main=5),
        bad("n_main", tf.prop42_example, n_main=0),
        bad("radius", tf.prop42_example, n_main=5, radius=-1.0),
        bad("phi0", tf.prop42_example, n_main=5, phi0=np.nan),
    ],
    # -- general
    "general_cost": gen(tf.general_cost),
    "general_velocity": gen(tf.general_velocity),
    "general_velocity_autodiff": gen(tf.general_velocity_autodiff),
    "general_velocity_ensemble": gen(tf.general_velocity_ensemble, ens=True),
    "layer_inputs": [
        good(tf.layer_inputs, RS, BETAS, X),
        bad("X", tf.layer_inputs, RS, BETAS, X3, jit=True),
        bad("betas", tf.layer_inputs, RS, BETAS[:1], X, jit=True),
        bad("Rs", tf.layer_inputs, RS_BAD, BETAS, X),
        bad("X", tf.layer_inputs, RS, BETAS, X_NAN),
    ],
    "separated_configuration": [
        good(tf.separated_configuration, 3.0 * YS, 0.2),
        bad("radius", tf.separated_configuration, 3.0 * YS, -0.2),
        bad("centers", tf.separated_configuration, np.full((2, 2), np.nan), 0.2),
    ],
    "is_cluster_separated": [
        good(tf.is_cluster_separated, RS, BETAS, X, LABELS),
        bad("labels", tf.is_cluster_separated, RS, BETAS, X, LABELS_7),
        bad("Rs", tf.is_cluster_separated, RS_BAD, BETAS, X, LABELS),
        bad("X", tf.is_cluster_separated, RS, BETAS, X3, LABELS),
    ],
    "integrate_general": [
        bad("labels", tf.integrate_general, RS, BETAS, X, LABELS_7, YS, (0.0, 1.0)),
        bad("Rs0", tf.integrate_general, RS_BAD, BETAS, X, LABELS, YS, (0.0, 1.0)),
        bad("t_span", tf.integrate_general, RS, BETAS, X, LABELS, YS, (1.0, 0.0)),
        bad("n_save", tf.integrate_general, RS, BETAS, X, LABELS, YS, (0.0, 1.0), n_save=-3),
    ],
    # -- standard
    "collapsed_velocity": [
        good(tf.collapsed_velocity, WS[0], WS[1], YS),
        bad("W", tf.collapsed_velocity, WS[0], np.ones((2, 3)), YS, jit=True),
        bad("Y", tf.collapsed_velocity, WS[0], WS[1], np.ones(2), jit=True),
        bad("B", tf.collapsed_velocity, np.full((2, 2), np.nan), WS[1], YS),
    ],
    "collapsed_flow": [
        good(tf.collapsed_flow, WS[0], WS[1], YS, 0.1, 3),
        bad("dt", tf.collapsed_flow, WS[0], WS[1], YS, -0.1, 3),
        bad("n_save", tf.collapsed_flow, WS[0], WS[1], YS, 0.1, -3),
        bad("W0", tf.collapsed_flow, WS[0], np.ones((2, 3)), YS, 0.1, n_save=3, jit=True),
        bad("method", tf.collapsed_flow, WS[0], WS[1], YS, 0.1, 3, method="rk45"),
    ],
    "conserved_quantity": [
        good(tf.conserved_quantity, WS[0], WS[1]),
        bad("W", tf.conserved_quantity, WS[0], np.ones((2, 3)), jit=True),
        bad("B", tf.conserved_quantity, np.full((2, 2), np.inf), WS[1]),
    ],
    "clustered_velocity": [
        good(tf.clustered_velocity, WS[0], X, X),
        bad("Y", tf.clustered_velocity, WS[0], X, X[:3], jit=True),
        bad("W", tf.clustered_velocity, np.ones((2, 3)), X, X, jit=True),
        bad("weights", tf.clustered_velocity, WS[0], X, X, np.ones(3), jit=True),
        bad("weights", tf.clustered_velocity, WS[0], X, X, -np.ones(N)),
        bad("X", tf.clustered_velocity, WS[0], X_NAN, X),
    ],
    "clustered_solution": [
        good(tf.clustered_solution, WS[0], X, X, 1.0),
        bad("s", tf.clustered_solution, WS[0], X, X, -1.0),
        bad("Y", tf.clustered_solution, WS[0], X, X[:3], 1.0),
        bad("weights", tf.clustered_solution, WS[0], X, X, 1.0, weights=-np.ones(N)),
        bad("X", tf.clustered_solution, WS[0], X_NAN, X, 1.0),
    ],
    # -- training
    "train_network": [
        bad("lr", tf.train_network, KEY, X, LABELS, YS, L=2, steps=4, lr=-0.1),
        bad("steps", tf.train_network, KEY, X, LABELS, YS, L=2, steps=-3, lr=0.1),
        bad("L", tf.train_network, KEY, X, LABELS, YS, L=0, steps=4, lr=0.1),
        bad("labels", tf.train_network, KEY, X, LABELS_7, YS, L=2, steps=4, lr=0.1),
        bad("X", tf.train_network, KEY, X_NAN, LABELS, YS, L=2, steps=4, lr=0.1),
    ],
    "nc_metrics": [
        good(tf.nc_metrics, X, LABELS, W_OUT, B_OUT),
        bad("labels", tf.nc_metrics, X, LABELS_7, W_OUT, B_OUT),
        bad("features", tf.nc_metrics, X3, LABELS, W_OUT, B_OUT),
        bad("features", tf.nc_metrics, X_NAN, LABELS, W_OUT, B_OUT),
        bad("b_out", tf.nc_metrics, X, LABELS, W_OUT, np.ones(3)),
    ],
    "diagnose": [
        bad("log", tf.diagnose, None, X, LABELS),
        bad("log", tf.diagnose, (1, 2), X, LABELS),
    ],
    "layer_nc": [
        good(tf.layer_nc, WS, BS, X, LABELS, 2),
        bad("labels", tf.layer_nc, WS, BS, X, LABELS_7, 2),
        bad("X", tf.layer_nc, WS, BS, X3, LABELS, 2),
        bad("num_classes", tf.layer_nc, WS, BS, X, LABELS, 0),
    ],
    "ensemble_layer_nc": [
        good(tf.ensemble_layer_nc, WS[None], BS[None], X, LABELS),
        bad("labels", tf.ensemble_layer_nc, WS[None], BS[None], X, LABELS_7, 2),
        bad("X", tf.ensemble_layer_nc, WS[None], BS[None], X3, LABELS),
        bad("X", tf.ensemble_layer_nc, WS[None], BS[None], X_NAN, LABELS),
    ],
    # -- datasets
    "load_dataset": [
        bad("source", tf.load_dataset, "iriss"),
        bad("Q", tf.load_dataset, "iris", Q=-1),
    ],
    # -- plot
    "plot_sectors": [
        good(tf.plot_sectors, WS[0], BETA, X, arrows=False, images=False, legend=False),
        bad("W", tf.plot_sectors, W_SING, BETA, X),
        bad("X", tf.plot_sectors, WS[0], BETA, X3),
        bad("X", tf.plot_sectors, WS[0], BETA, X_NAN),
        bad("labels", tf.plot_sectors, WS[0], BETA, X, labels=LABELS[:3]),
    ],
    "plot_cost": [
        good(tf.plot_cost, np.arange(3.0), np.array([1.0, 0.5, 0.2])),
        bad("cost", tf.plot_cost, np.arange(3.0), np.array([1.0, 0.5])),
        bad("ts", tf.plot_cost, np.array([0.0, np.nan, 2.0]), np.array([1.0, 0.5, 0.2])),
    ],
    "frame_player": [
        bad("n_frames", tf.frame_player, lambda ax, k: None, 1),
        bad("n_frames", tf.frame_player, lambda ax, k: None, 2.5),
        bad("draw", tf.frame_player, None, 3),
    ],
    "slider_explorer": [
        bad("values", tf.slider_explorer, lambda ax, k: None, [1.0], name="a"),
        bad("name", tf.slider_explorer, lambda ax, k: None, [1.0, 2.0], name=""),
        bad("draw", tf.slider_explorer, None, [1.0, 2.0], name="a"),
    ],
    # -- widgets
    "Explorer": [
        bad("labels", tf.Explorer, X, LABELS_7, YS),
        bad("X", tf.Explorer, X3, LABELS, YS),
        bad("mode", tf.Explorer, X, LABELS, YS, mode="none"),
        bad("targets", tf.Explorer, X, LABELS, np.ones((3, 2))),
    ],
    # -- runs, sharding, sweep, stats
    "run_one": [
        bad("n_steps", tf.run_one, _member(), n_steps=-3),
        bad("h", tf.run_one, _member(h=np.asarray(-0.1)), n_steps=4),
        bad("R0", tf.run_one, _member(R0=R_BAD), n_steps=4),
        bad("X", tf.run_one, _member(X=X_NAN), n_steps=4),
    ],
    "run_general": [
        bad("n_steps", tf.run_general, _general_member(), n_steps=-3),
        bad("h", tf.run_general, _general_member(h=np.asarray(-0.1)), n_steps=4),
        bad("labels", tf.run_general, _general_member(labels=LABELS_7), n_steps=4),
        bad("Rs0", tf.run_general, _general_member(Rs0=RS_BAD), n_steps=4),
    ],
    "run_ensemble": [
        bad("chunk_size", tf.run_ensemble, partial(tf.run_one, n_steps=4),
            {k: v[None] for k, v in _member().items()}, chunk_size=-4),
        bad("params['h']", tf.run_ensemble, partial(tf.run_one, n_steps=4),
            {k: v[None] for k, v in _member(h=np.asarray(-0.1)).items()}),
    ],
    "run_sweep": [
        bad("step", tf.run_sweep, {"integrator": {"step": -0.1}}, TMP),
        bad("Q", tf.run_sweep, {"data": {"Q": 0}}, TMP),
        bad("out_dir", tf.run_sweep, {}, __file__),
    ],
    "load_sweep": [bad("out_dir", tf.load_sweep, TMP)],
    "summarize": [
        bad("results", tf.summarize, {}, 6),
        bad("N", tf.summarize, {"s1": np.ones(2)}, 0),
    ],
}

# Names that take no input: constants and result types.
DATA = {"UNTRUNCATED", "PARTIAL", "FULL", "TABLEAUS", "FlowSolution"}
PUBLIC = [name for names in tf.PUBLIC_API.values() for name in names]


def _names(arg: str) -> str:
    return rf"(?<![\w']){re.escape(arg)}(?![\w'])"


def test_the_table_covers_the_public_api_and_nothing_else():
    assert set(TABLE) | DATA == set(PUBLIC), (
        f"missing: {sorted(set(PUBLIC) - set(TABLE) - DATA)}; "
        f"stale: {sorted((set(TABLE) | DATA) - set(PUBLIC))}"
    )
    for name in DATA:
        assert not callable(getattr(tf, name)) or isinstance(getattr(tf, name), type), name


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_refuses_bad_input(name, tmp_path):
    if name in DATA:
        return
    assert name in TABLE, f"{name}: public, but no row of bad inputs in tests/test_bad_input.py"
    rows = TABLE[name]
    assert any(c.arg is not None for c in rows), f"{name}: no bad input in its row"
    failures = []
    for c in rows:
        if any(a is TMP for a in c.args):  # a fresh directory for the sweeps
            args = [str(tmp_path / "sweep") if a is TMP else a for a in c.args]
            c = Call(c.f, *args, arg=c.arg, jit=c.jit, **c.kw)
        if c.arg is None:
            c()  # the good call runs
            continue
        modes = [("eager", c)] + ([("jit", c.jitted)] if c.jit else [])
        for mode, f in modes:
            try:
                f()
            except ValueError as e:
                if not re.search(_names(c.arg), str(e)):
                    failures.append(f"{mode} bad {c.arg}: ValueError not naming it: {e}")
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append(f"{mode} bad {c.arg}: {type(e).__name__}: {str(e)[:200]}")
            else:
                failures.append(f"{mode} bad {c.arg}: accepted")
    plt.close("all")
    assert not failures, f"{name}:\n  " + "\n  ".join(failures)
