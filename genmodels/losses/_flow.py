"""Regression on a path's own coordinates: conditional flow matching and its relatives.

On a path x_t = a(t) x0 + b(t) x1 (x1 = eps ~ N(0, I), t = 0 at the data) a ``PathModel`` predicts

    velocity: a' x0 + b' x1     eps: x1     v: a x1 - b x0     score: -x1 / b

and is trained by E_{t, x0, x1} w(t) ||pred(x_t, t) - target||^2 (:func:`path_loss`). On the Linear
path with the velocity target this is conditional flow matching / rectified flow (Lipman et al. 2023;
Liu et al. 2023; Tong et al. 2023, I-CFM), whose minimiser is the marginal velocity
E[x1 - x0 | x_t]; with an :class:`OTCoupling` of each minibatch it is OT-CFM; on the Cosine path it is
the variance-preserving (trigonometric) flow. Reflow retrains on (sample, noise) pairs produced by the
model's own ODE (:func:`reflow_pairs`, :func:`reflow_loss`) and :func:`straightness` measures how far
the flow is from straight lines.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from genmodels._checks import check_known, check_positive
from genmodels.losses._common import check_data, finish, row_error, rows_of, split_batch
from genmodels.losses._ot import OTCoupling
from genmodels.models._common import call_net, check_batch_labels
from genmodels.denoisers import AbstractParameterization, Velocity
from genmodels.models._path import PathModel, velocity
from genmodels.paths import AbstractPath, Linear
from genmodels.samplers._base import AbstractDenoiserSampler
from genmodels.samplers._driver import sample, solve


def _resolve(model, path, parameterization):
    """(predict(x_t, t, labels), path, parameterization) for a PathModel or a raw fn(x_t, t)."""
    if isinstance(model, PathModel):
        if parameterization is not None and type(parameterization) is not type(model.parameterization):
            raise ValueError(
                f"the model predicts {model.parameterization!r} but the loss asked for {parameterization!r}."
            )
        if path is not None and type(path) is not type(model.path):
            raise ValueError(f"the model lives on {type(model.path).__name__} but the loss asked for {type(path).__name__}.")
        return model.predict, model.path, model.parameterization
    if not callable(model):
        raise TypeError(f"model must be a gm.models.PathModel or a callable fn(x_t, t), got {type(model).__name__}.")
    parameterization = Velocity() if parameterization is None else parameterization
    if not isinstance(parameterization, AbstractParameterization):
        raise TypeError(f"parameterization must be a gm.denoisers parameterization value (Eps(), V(), ...), got {parameterization!r}.")
    path = Linear() if path is None else path
    if not isinstance(path, AbstractPath):
        raise TypeError(f"path must be a gm.paths path, got {type(path).__name__}.")
    return (lambda x, t, labels: call_net(model, x, t, labels)), path, parameterization


def _target(path, parameterization, t, x0, x1):
    return parameterization.target(path, t, x0, x1)


def _regress(predict, path, parameterization, x0, x1, labels, key, *, t_min, t_max, sigma_min, weighting, reduction):
    n = x0.shape[0]
    k_t, k_xi = jax.random.split(key)
    lo = path.t_min if t_min is None else t_min
    hi = path.t_max if t_max is None else t_max
    t = jax.random.uniform(k_t, (n,), x0.dtype, minval=lo, maxval=hi)
    x_t = rows_of(path.alpha(t), x0) * x0 + rows_of(path.noise_std(t), x0) * x1
    if sigma_min:
        x_t = x_t + sigma_min * jax.random.normal(k_xi, x0.shape, x0.dtype)
    err = row_error(predict(x_t, t, labels) - _target(path, parameterization, t, x0, x1), reduction)
    w = jnp.ones_like(t) if weighting is None else weighting(t)
    return jnp.mean(w * err), err


def path_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    path: AbstractPath | None = None,
    parameterization: str | None = None,
    coupling: OTCoupling | None = None,
    sigma_min: float = 0.0,
    t_min: float | None = None,
    t_max: float | None = None,
    weighting: Callable[[Array], Array] | None = None,
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """E_t w(t) ||pred(x_t, t) - target||^2 with t ~ U(t_min, t_max) (default the path's range).

    Args:
        model: a ``gm.models.PathModel`` (its path and parameterisation are used), or a callable
            ``fn(x_t, t)`` predicting ``parameterization`` (default "velocity") on ``path`` (default
            Linear).
        batch: x0 (batch, ...) or (x0, labels) / dict.
        coupling: pairs each data row with a noise row of the minibatch (``OTCoupling()`` for OT-CFM);
            default independent noise.
        sigma_min: std of extra Gaussian noise added to x_t with the target unchanged (Tong et al.'s
            I-CFM with sigma > 0); velocity models only.
        weighting: w(t), default 1.
        t_min, t_max: the range of t; the eps and score targets need b(t_min) > 0 (e.g. t_min=1e-3 on
            the Linear path) and the score target diverges as b -> 0.
    """
    predict, path, parameterization = _resolve(model, path, parameterization)
    if sigma_min and not isinstance(parameterization, Velocity):
        raise ValueError("sigma_min > 0 only applies to a velocity target (I-CFM).")
    check_positive("sigma_min", sigma_min, allow_zero=True)
    x0, labels = split_batch(batch)
    k_noise, k_pair, k_t = jax.random.split(key, 3)
    x1 = jax.random.normal(k_noise, x0.shape, x0.dtype)
    if coupling is not None:
        x1 = coupling(k_pair, x0, x1)
    loss, err = _regress(
        predict, path, parameterization, x0, x1, labels, k_t,
        t_min=t_min, t_max=t_max, sigma_min=sigma_min, weighting=weighting, reduction=reduction,
    )
    return finish(loss, {"mse": jnp.mean(err)}, with_metrics)


def cfm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    sigma_min: float = 0.0,
    coupling: OTCoupling | None = None,
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """Conditional flow matching on the Linear path, x_t = (1 - t) x0 + t x1, target x1 - x0, t ~ U(0, 1):
    I-CFM (``sigma_min`` > 0 adds N(0, sigma_min^2) to x_t), rectified flow (sigma_min = 0), OT-CFM
    (``coupling=OTCoupling()``, or :func:`ot_cfm_loss`). The model is a velocity ``PathModel`` on the
    Linear path or a callable ``u(x_t, t)``."""
    return path_loss(
        model, batch, key, path=Linear(), parameterization=Velocity(), coupling=coupling,
        sigma_min=sigma_min, reduction=reduction, with_metrics=with_metrics,
    )


def ot_cfm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    sigma_min: float = 0.0,
    method: str = "sinkhorn",
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """OT-CFM: :func:`cfm_loss` with each minibatch re-paired by ``OTCoupling(method)``."""
    return cfm_loss(
        model, batch, key, sigma_min=sigma_min, coupling=OTCoupling(method=method),
        reduction=reduction, with_metrics=with_metrics,
    )


# ---- reflow --------------------------------------------------------------------------------------


def reflow_pairs(
    model: Any, sampler: AbstractDenoiserSampler, key: PRNGKeyArray, shape: tuple[int, ...]
) -> tuple[Array, Array]:
    """(x0, x1): samples of ``model`` from ``sampler`` and the standard-normal noise x1 each started from.

    The sampler scales the noise by its first level; use a deterministic sampler whose schedule starts at
    sigma = inf on the Linear path (``gm.schedules.uniform_t(gm.paths.Linear(), steps)``) so that x1 is
    exactly the t = 1 end of the model's ODE, as reflow (Liu et al. 2023) needs.
    """
    k_noise, k_run = jax.random.split(key)
    x1 = jax.random.normal(k_noise, tuple(shape), jnp.result_type(float))
    return sample(model, sampler, k_run, shape, noise=x1), x1


def reflow_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    reduction: str = "mean",
    with_metrics: bool = False,
):
    """Flow matching on fixed (x0, x1) pairs (from :func:`reflow_pairs`): batch is (x0, x1), (x0, x1,
    labels) or {"x0": x0, "x1": x1[, "labels": labels]}; Linear path, velocity target x1 - x0."""
    if isinstance(batch, dict):
        if "x0" not in batch or "x1" not in batch:
            raise ValueError(f"a dict reflow batch needs keys 'x0' and 'x1', got {sorted(batch)}.")
        x0, x1, labels = batch["x0"], batch["x1"], batch.get("labels")
    elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        x0, x1 = batch[0], batch[1]
        labels = batch[2] if len(batch) == 3 else None
    else:
        raise ValueError("a reflow batch is (x0, x1), (x0, x1, labels) or a dict with 'x0' and 'x1'.")
    x0, x1 = check_data(x0, "reflow x0"), check_data(x1, "reflow x1")
    if x0.shape != x1.shape:
        raise ValueError(f"reflow x0 and x1 must have one shape, got {x0.shape} and {x1.shape}.")
    labels = check_batch_labels(labels, x0)
    predict, path, parameterization = _resolve(model, Linear(), Velocity())
    loss, err = _regress(
        predict, path, parameterization, x0, x1, labels, key,
        t_min=None, t_max=None, sigma_min=0.0, weighting=None, reduction=reduction,
    )
    return finish(loss, {"mse": jnp.mean(err)}, with_metrics)


def straightness(
    model: Any,
    sampler: AbstractDenoiserSampler,
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    *,
    path: AbstractPath | None = None,
    noise: Array | None = None,
) -> Array:
    """S = E int_0^1 ||v(x_t, t) - (x1 - x0)||^2 dt along the model's own ODE (Liu et al. 2023), where
    x1 is the starting noise and x0 the sample reached; 0 for a flow of straight lines. (On a path other
    than Linear, x1 - x0 is the chord (x_{t_0} - x_{t_N}) / (t_0 - t_N) of the grid's end points.)

    The trajectory is ``gm.solve(model, sampler, ..., save_trajectory=True)``; v is the model's velocity
    on ``path`` (default the model's path, else Linear) at each saved state, and the integral is the
    left Riemann sum over the sampler's grid in t. Use a schedule starting at sigma = inf (e.g.
    ``uniform_t(Linear(), steps)``) so that x1 is the noise. Returns a scalar (squared norms summed over
    the data dimensions, averaged over the batch).
    """
    if path is None:
        path = model.path if isinstance(model, PathModel) else Linear()
    sol = solve(model, sampler, key, shape, noise=noise, save_trajectory=True)
    traj, sig = sol.trajectory, sol.levels
    t = path.inverse_sigma(sig)
    inf = jnp.isinf(sig)
    scale = jnp.where(inf, path.noise_std(t), path.scale(t))  # row at sigma = inf holds the noise itself
    x_t = traj * scale.reshape((-1,) + (1,) * (traj.ndim - 1))
    chord = (x_t[0] - x_t[-1]) / (t[0] - t[-1])  # x1 - x0 on the Linear path from t = 1 to 0
    v = jax.lax.map(lambda args: velocity(model, args[0], jnp.full(shape[:1], args[1]), path), (x_t[:-1], t[:-1]))
    sq = jnp.sum((v - chord[None]).reshape(v.shape[0], v.shape[1], -1) ** 2, axis=-1)  # (steps, batch)
    dt = t[:-1] - t[1:]
    return jnp.sum(dt * jnp.mean(sq, axis=1))
