"""Regression on a path's own coordinates: conditional flow matching and its relatives.

On a path x_t = a(t) x0 + b(t) x1 (x1 = eps ~ N(0, I), t = 0 at the data) a path model
(``gm.protocols.AbstractPathModel``, e.g. ``gm.models.PathModel``) predicts what its parameterization
value says, and the value owns the regression target (``gm.denoisers``):

    Velocity(): a' x0 + b' x1    Eps(): x1    V(): a x1 - b x0    Score(): -x1 / b    X0(): x0

It is trained by E_{t, x0, x1} w(t) ||pred(x_t, t) - target||^2 (:func:`path_loss`). On the Linear
path with the velocity target this is conditional flow matching / rectified flow (Lipman et al. 2023;
Liu et al. 2023; Tong et al. 2023, I-CFM), whose minimiser is the marginal velocity
E[x1 - x0 | x_t]; with a coupling of each minibatch (:class:`SinkhornCoupling`, :class:`ExactCoupling`)
it is OT-CFM; on the Cosine path it is
the variance-preserving (trigonometric) flow. Reflow retrains on (sample, noise) pairs produced by the
model's own ODE (:func:`reflow_pairs`, :func:`reflow_loss`) and :func:`straightness` measures how far
the flow is from straight lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, PRNGKeyArray, Real

from genmodels._arrays import like
from genmodels._checks import check_positive, is_concrete
from genmodels.denoisers import AbstractParameterization, Velocity
from genmodels.errors import ArgumentError, ArgumentTypeError, ProtocolError
from genmodels.losses._common import (
    MODEL_PROTOCOLS,
    LossAndMetrics,
    Reduction,
    check_data,
    finish,
    refuse,
    row_error,
    rows_of,
    split_batch,
)
from genmodels.losses._ot import AbstractCoupling, SinkhornCoupling
from genmodels.models._common import call_net, check_batch_labels
from genmodels.models._path import velocity
from genmodels.paths import AbstractPath, Linear
from genmodels.protocols import AbstractPathModel
from genmodels.samplers._base import AbstractDenoiserSampler
from genmodels.samplers._driver import sample, solve

Predictor = Callable[[Array, Array, Array | None], Array]


def _check_parameterization(parameterization: Any) -> None:
    if not isinstance(parameterization, AbstractParameterization):
        raise ArgumentTypeError(
            "parameterization must be a gm.denoisers parameterization value (Eps(), V(), Score(), Velocity(), "
            f"X0()), got {parameterization!r}."
        )


def _path_model(model: AbstractPathModel, path, parameterization, needed_by: str):
    """A path model's own (predict, path, parameterization), refusing one that predicts something else."""
    own = model.parameterization
    if parameterization is not None and type(parameterization) is not type(own):
        raise ArgumentError(
            f"{needed_by} regresses the {type(parameterization).__name__}() target, but the model predicts "
            f"{type(own).__name__}() (its parameterization); build the model with "
            f"parameterization=gm.denoisers.{type(parameterization).__name__}() or pass the model's own."
        )
    if path is not None and type(path) is not type(model.path):
        raise ArgumentError(
            f"{needed_by} regresses on the {type(path).__name__} path, but the model lives on "
            f"{type(model.path).__name__}; build the model on gm.paths.{type(path).__name__}()."
        )
    return model.predict, model.path, own


def resolve(model: Any, path: Any, parameterization: Any, needed_by: str) -> tuple[Predictor, AbstractPath, Any]:
    """(predict(x_t, t, labels), path, parameterization) for a path model or a plain fn(x_t, t[, labels]).

    A ``gm.protocols.AbstractPathModel`` brings its own path and parameterization, and must match those
    asked for (when given); any other ``gm.protocols`` model is refused (a ProtocolError: an ``EDMModel``
    is a denoiser, trained by ``edm_loss``); a plain callable predicts ``parameterization`` (default
    ``Velocity()``) on ``path`` (default ``Linear()``).
    """
    if parameterization is not None:
        _check_parameterization(parameterization)
    if path is not None and not isinstance(path, AbstractPath):
        raise ArgumentTypeError(f"path must be a gm.paths path, got {type(path).__name__}.")
    if isinstance(model, AbstractPathModel):
        return _path_model(model, path, parameterization, needed_by)
    if isinstance(model, MODEL_PROTOCOLS):
        refuse(
            model,
            needed_by,
            "a gm.protocols.AbstractPathModel (or a plain predictor fn(x_t, t))",
            "A path loss regresses a network in a path's own coordinates; train a denoiser model with "
            "gm.losses.edm_loss / dsm_loss, or build gm.models.PathModel(net, path, parameterization).",
        )
    if not callable(model):
        raise ProtocolError(
            f"{needed_by} needs model to be a gm.protocols.AbstractPathModel or a callable fn(x_t, t), got "
            f"{type(model).__name__}."
        )
    parameterization = Velocity() if parameterization is None else parameterization
    path = Linear() if path is None else path
    return (lambda x, t, labels: call_net(model, x, t, labels)), path, parameterization


def _regress(predict, path, parameterization, x0, x1, labels, key, *, t_min, t_max, sigma_min, weighting, reduction):
    n = x0.shape[0]
    k_t, k_xi = jax.random.split(key)
    lo = path.t_min if t_min is None else t_min
    hi = path.t_max if t_max is None else t_max
    t = jax.random.uniform(k_t, (n,), x0.dtype, minval=lo, maxval=hi)
    x_t = rows_of(path.alpha(t), x0) * x0 + rows_of(path.noise_std(t), x0) * x1
    if not (is_concrete(sigma_min) and float(sigma_min) == 0.0):
        x_t = x_t + like(sigma_min, x0) * jax.random.normal(k_xi, x0.shape, x0.dtype)
    err = row_error(predict(x_t, t, labels) - parameterization.target(path, t, x0, x1), reduction)
    w = jnp.ones_like(t) if weighting is None else weighting(t)
    return jnp.mean(w * err), err


def _fit_path(predict, path, parameterization, batch, key, *, coupling, sigma_min, t_min, t_max, weighting, reduction):
    """The regression of :func:`path_loss` on a resolved predictor: validation, noise, coupling, loss."""
    check_positive("sigma_min", sigma_min, allow_zero=True)
    if not isinstance(parameterization, Velocity) and not (is_concrete(sigma_min) and float(sigma_min) == 0.0):
        raise ArgumentError(
            f"sigma_min > 0 only applies to a Velocity() target (I-CFM); the model predicts "
            f"{type(parameterization).__name__}()."
        )
    if coupling is not None and not isinstance(coupling, AbstractCoupling):
        raise ArgumentTypeError(
            f"coupling must be a gm.losses coupling (SinkhornCoupling(), ExactCoupling()) or None, got {coupling!r}."
        )
    x0, labels = split_batch(batch)
    k_noise, k_pair, k_t = jax.random.split(key, 3)
    x1 = jax.random.normal(k_noise, x0.shape, x0.dtype)
    if coupling is not None:
        x1 = coupling(k_pair, x0, x1)
    loss, err = _regress(
        predict,
        path,
        parameterization,
        x0,
        x1,
        labels,
        k_t,
        t_min=t_min,
        t_max=t_max,
        sigma_min=sigma_min,
        weighting=weighting,
        reduction=reduction,
    )
    return finish(loss, {"mse": jnp.mean(err)})


def path_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    path: AbstractPath | None = None,
    parameterization: AbstractParameterization | None = None,
    coupling: AbstractCoupling | None = None,
    sigma_min: Real[ArrayLike, ""] = 0.0,
    t_min: Real[ArrayLike, ""] | None = None,
    t_max: Real[ArrayLike, ""] | None = None,
    weighting: Callable[[Array], Array] | None = None,
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """E_t w(t) ||pred(x_t, t) - target||^2 with t ~ U(t_min, t_max) (default the path's range), where
    target = ``parameterization.target(path, t, x0, x1)`` (x1 the noise).

    Args:
        model: a ``gm.protocols.AbstractPathModel`` such as ``gm.models.PathModel`` (its path and
            parameterization are used; ``path`` / ``parameterization``, when given, must be the model's),
            or a callable ``fn(x_t, t)`` predicting ``parameterization`` (default ``gm.denoisers.Velocity()``)
            on ``path`` (default Linear). Other ``gm.protocols`` models are a ProtocolError.
        batch: x0 (batch, ...) or (x0, labels) / dict.
        coupling: pairs each data row with a noise row of the minibatch (``SinkhornCoupling()`` or
            ``ExactCoupling()`` for OT-CFM); default independent noise.
        sigma_min: std of extra Gaussian noise added to x_t with the target unchanged (Tong et al.'s
            I-CFM with sigma > 0); ``Velocity()`` models only. May be traced.
        weighting: w(t), default 1.
        t_min, t_max: the range of t; the eps and score targets need b(t_min) > 0 (e.g. t_min=1e-3 on
            the Linear path) and the score target diverges as b -> 0. May be traced.
        reduction: squared error per row averaged ("mean") or summed ("sum") over the data dimensions.

    Returns:
        (loss, {"loss", "mse"}): mse is the unweighted squared error averaged over the batch.
    """
    predict, path, parameterization = resolve(model, path, parameterization, "path_loss")
    return _fit_path(
        predict,
        path,
        parameterization,
        batch,
        key,
        coupling=coupling,
        sigma_min=sigma_min,
        t_min=t_min,
        t_max=t_max,
        weighting=weighting,
        reduction=reduction,
    )


def cfm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    sigma_min: Real[ArrayLike, ""] = 0.0,
    coupling: AbstractCoupling | None = None,
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """Conditional flow matching on the Linear path, x_t = (1 - t) x0 + t x1, target x1 - x0, t ~ U(0, 1):
    I-CFM (``sigma_min`` > 0 adds N(0, sigma_min^2) to x_t), rectified flow (sigma_min = 0), OT-CFM
    (``coupling=SinkhornCoupling()``, or :func:`ot_cfm_loss`). The model is a ``Velocity()``
    ``gm.models.PathModel`` on the Linear path or a callable ``u(x_t, t)``; a denoiser model (an
    ``EDMModel``) is a ProtocolError. Returns (loss, {"loss", "mse"})."""
    predict, path, parameterization = resolve(model, Linear(), Velocity(), "cfm_loss")
    return _fit_path(
        predict,
        path,
        parameterization,
        batch,
        key,
        coupling=coupling,
        sigma_min=sigma_min,
        t_min=None,
        t_max=None,
        weighting=None,
        reduction=reduction,
    )


def ot_cfm_loss(
    model: Any,
    batch: Any,
    key: PRNGKeyArray,
    *,
    sigma_min: Real[ArrayLike, ""] = 0.0,
    coupling: AbstractCoupling = SinkhornCoupling(),
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """OT-CFM: :func:`cfm_loss` with each minibatch re-paired by ``coupling`` (default
    ``SinkhornCoupling()``; ``ExactCoupling()`` for small batches)."""
    if not isinstance(coupling, AbstractCoupling):
        raise ArgumentTypeError(
            f"coupling must be a gm.losses coupling (SinkhornCoupling(), ExactCoupling()), got {coupling!r}."
        )
    return cfm_loss(model, batch, key, sigma_min=sigma_min, coupling=coupling, reduction=reduction)


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
    reduction: Reduction = "mean",
) -> LossAndMetrics:
    """Flow matching on fixed (x0, x1) pairs (from :func:`reflow_pairs`): batch is (x0, x1), (x0, x1,
    labels) or {"x0": x0, "x1": x1[, "labels": labels]}; Linear path, velocity target x1 - x0. The model
    is as for :func:`cfm_loss`. Returns (loss, {"loss", "mse"})."""
    if isinstance(batch, dict):
        if "x0" not in batch or "x1" not in batch:
            raise ArgumentError(f"a dict reflow batch needs keys 'x0' and 'x1', got {sorted(batch)}.")
        x0, x1, labels = batch["x0"], batch["x1"], batch.get("labels")
    elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        x0, x1 = batch[0], batch[1]
        labels = batch[2] if len(batch) == 3 else None
    else:
        raise ArgumentError("a reflow batch is (x0, x1), (x0, x1, labels) or a dict with 'x0' and 'x1'.")
    x0, x1 = check_data(x0, "reflow x0"), check_data(x1, "reflow x1")
    if x0.shape != x1.shape:
        raise ArgumentError(f"reflow x0 and x1 must have one shape, got {x0.shape} and {x1.shape}.")
    labels = check_batch_labels(labels, x0)
    predict, path, parameterization = resolve(model, Linear(), Velocity(), "reflow_loss")
    loss, err = _regress(
        predict,
        path,
        parameterization,
        x0,
        x1,
        labels,
        key,
        t_min=None,
        t_max=None,
        sigma_min=0.0,
        weighting=None,
        reduction=reduction,
    )
    return finish(loss, {"mse": jnp.mean(err)})


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
        path = model.path if isinstance(model, AbstractPathModel) else Linear()
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
