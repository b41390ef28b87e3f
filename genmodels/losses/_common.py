"""Shared plumbing of the losses: batches, the model protocol each loss asks for, reductions, results.

Every loss is ``loss(model, batch, key, **options) -> (loss, metrics)``: a scalar and a dict of scalar
metrics (always holding ``"loss"`` itself), whatever the options, so a trainer differentiates it with
``has_aux=True`` and logs the metrics.

Which model a loss takes is a type check against ``gm.protocols`` (never an attribute probe):

* a loss on the denoiser (``dsm_loss`` and its presets) takes an :class:`AbstractDenoiserModel`;
* a score-matching loss takes a :class:`HasScore` model (its native score) or any denoiser model (Tweedie);
* a loss in a path's own coordinates (``path_loss``, ``cfm_loss``, ``reflow_loss``) takes an
  :class:`AbstractPathModel` whose path and parameterization are those the loss regresses.

A model that implements some other ``gm.protocols`` model class (an ``EDMModel`` given to ``cfm_loss``, an
autoregressive model given to ``edm_loss``) is refused with a :class:`~genmodels.errors.ProtocolError`. A
plain callable that implements none of them is taken at its word: a denoiser ``D(x, sigma)`` for the
denoising losses (wrapped once by ``gm.denoisers.as_denoiser``), a score ``s(x, sigma)`` for the
score-matching losses, a predictor ``fn(x_t, t)`` for the path losses.

``reduction`` is a static ``Literal["mean", "sum"]``: the squared error of a row is averaged ("mean") or
summed ("sum") over its data dimensions. It sets the program, not a number in it, so it stays a name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import jax.numpy as jnp
from jaxtyping import Array, Float

from genmodels._checks import check_finite
from genmodels.denoisers import as_denoiser, score_from_denoised
from genmodels.errors import ArgumentError, ArgumentTypeError, ProtocolError
from genmodels.models._common import call_net, check_batch_labels, sigma_rows
from genmodels.protocols import (
    AbstractAutoregressiveModel,
    AbstractDenoiserModel,
    AbstractFlowMapModel,
    HasScore,
)

Reduction = Literal["mean", "sum"]
"""How a row's squared error is reduced over its data dimensions (static)."""

LossAndMetrics = tuple[Float[Array, ""], dict[str, Float[Array, ""]]]
"""What every loss returns: the scalar loss and a dict of scalar metrics (with ``"loss"``)."""

_MEAN_OVER_DIMS: dict[str, bool] = {"mean": True, "sum": False}
MODEL_PROTOCOLS = (AbstractDenoiserModel, HasScore, AbstractAutoregressiveModel, AbstractFlowMapModel)
_X_KEYS = ("x", "x0", "image", "images", "data")
_LABEL_KEYS = ("labels", "label", "y")


# ---- batches ------------------------------------------------------------------------------------------


def split_batch(batch: Any, name: str = "batch") -> tuple[Array, Array | None]:
    """(x0, labels) from a batch: an array x0 of shape (batch, ...), a tuple ``(x0,)`` or ``(x0, labels)``,
    or a dict with ``"x"`` (or x0/image/images/data) and optionally ``"labels"`` (or label/y).

    x0 must be floating point with at least 2 dimensions (batch first) and finite (checked inside jit);
    labels an integer array of shape (batch,). Labels in the batch are passed to the model, so an
    unconditional model needs batches without labels.
    """
    labels = None
    if isinstance(batch, Mapping):
        xk = [k for k in _X_KEYS if k in batch]
        if not xk:
            raise ArgumentError(f"a dict {name} needs the data under one of {_X_KEYS}; got keys {sorted(batch)}.")
        x0 = batch[xk[0]]
        lk = [k for k in _LABEL_KEYS if k in batch]
        labels = batch[lk[0]] if lk else None
    elif isinstance(batch, (tuple, list)):
        if len(batch) not in (1, 2):
            raise ArgumentError(f"a tuple {name} must be (x0,) or (x0, labels), got {len(batch)} entries.")
        x0 = batch[0]
        labels = batch[1] if len(batch) == 2 else None
    else:
        x0 = batch
    x0 = check_data(x0, f"{name} data")
    return x0, check_batch_labels(labels, x0, f"{name} labels")


def check_data(x0: Any, name: str = "x0") -> Array:
    """x0 as a finite floating array of shape (batch, *dims), batch >= 1 (NaN checked inside jit too)."""
    x0 = jnp.asarray(x0)
    if x0.ndim < 2:
        raise ArgumentError(f"{name} must have shape (batch, *dims) with at least 2 dimensions, got {tuple(x0.shape)}.")
    if x0.shape[0] < 1:
        raise ArgumentError(f"{name} must have at least one row, got shape {tuple(x0.shape)}.")
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        raise ArgumentTypeError(f"{name} must be floating point, got {x0.dtype}; cast it with .astype(jnp.float32).")
    return check_finite(name, x0, "the training data must be finite")


# ---- reductions and results ---------------------------------------------------------------------------


def mean_over_dims(reduction: Reduction) -> bool:
    """True for "mean", False for "sum"; anything else is an ArgumentError naming ``reduction``."""
    if not isinstance(reduction, str) or reduction not in _MEAN_OVER_DIMS:
        raise ArgumentError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
    return _MEAN_OVER_DIMS[reduction]


def row_error(diff: Float[Array, batch * dims], reduction: Reduction) -> Float[Array, " batch"]:
    """Squared error per batch row: mean over the data dimensions ("mean") or their sum ("sum")."""
    axes = tuple(range(1, diff.ndim))
    reduce = jnp.mean if mean_over_dims(reduction) else jnp.sum
    return reduce(diff**2, axis=axes)


def row_reduce(value: Float[Array, " batch"], x: Array, reduction: Reduction) -> Float[Array, " batch"]:
    """A per-row quantity summed over the data dimensions, divided by their number for "mean"."""
    return value / (x.size // x.shape[0]) if mean_over_dims(reduction) else value


def finish(loss: Array, metrics: dict[str, Array]) -> LossAndMetrics:
    """(loss, {"loss": loss, **metrics})."""
    loss = jnp.asarray(loss)
    return loss, {"loss": loss, **metrics}


def rows_of(value: Array, x: Array) -> Array:
    """A per-row value of shape (batch,) reshaped to broadcast against x of shape (batch, *dims)."""
    return value.reshape(value.shape + (1,) * (x.ndim - 1))


# ---- the model a loss asks for ------------------------------------------------------------------------


def kinds(model: Any) -> str:
    names = [p.__name__ for p in MODEL_PROTOCOLS if isinstance(model, p)]
    return " and ".join(names)


def refuse(model: Any, needed_by: str, wanted: str, hint: str) -> None:
    raise ProtocolError(
        f"{needed_by} needs model to be {wanted}; got {type(model).__name__}, a gm.protocols {kinds(model)}. {hint}"
    )


def denoiser_model(model: Any, needed_by: str) -> AbstractDenoiserModel:
    """``model`` as a denoiser model for a denoising loss: a ``gm.protocols.AbstractDenoiserModel`` as is,
    a plain callable ``D(x, sigma[, labels])`` wrapped once (``gm.denoisers.as_denoiser``)."""
    if isinstance(model, AbstractDenoiserModel):
        return model
    if isinstance(model, MODEL_PROTOCOLS):
        refuse(
            model,
            needed_by,
            "a gm.protocols.AbstractDenoiserModel (or a plain denoiser D(x, sigma))",
            "Denoising losses train a denoiser D(x, sigma) = E[x0 | x]; autoregressive models train with "
            "gm.autoregressive.nll_loss.",
        )
    return as_denoiser(model, "model")


def score_fn(model: Any, needed_by: str) -> Callable[[Array, Array, Array | None], Array]:
    """s(x, sigma, labels) of a model for a score-matching loss: the native score of a ``HasScore`` model,
    Tweedie (D - x) / sigma^2 for any other denoiser model, a plain callable taken as ``s(x, sigma)``."""
    if isinstance(model, HasScore):
        return model.score
    if isinstance(model, AbstractDenoiserModel):
        return lambda x, sigma, labels: score_from_denoised(x, sigma_rows(sigma, x), model.denoise(x, sigma, labels))
    if isinstance(model, MODEL_PROTOCOLS):
        refuse(model, needed_by, "a gm.protocols.HasScore or AbstractDenoiserModel", "")
    if not callable(model):
        raise ProtocolError(
            f"{needed_by} needs model to be a HasScore or AbstractDenoiserModel (gm.protocols), or a score "
            f"function s(x, sigma); got {type(model).__name__}."
        )
    return lambda x, sigma, labels: call_net(model, x, sigma, labels)
