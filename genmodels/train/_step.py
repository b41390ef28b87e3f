"""The compiled training step: up to ``k`` optimiser steps per dispatch in one loop, buffers donated.

One step at counter ``s`` (``data_key, loss_key = split(key)``)::

    batch            = dataset.batch(data_key, s)               # sharded on mesh axis "data" if a mesh
    loss, grads      = value_and_grad(loss_fn)(merge(graphdef, params), batch, fold_in(loss_key, s))
    params, opt      = optax update;  ema = d_s ema + (1 - d_s) params (d_s: see _ema)

If the loss or the gradient norm is not finite the update is discarded (the whole state keeps its previous
value through ``jnp.where``), ``bad_step`` records ``s`` and every later step of the call is a no-op, so the
state returned is the last good one and the host can raise without having lost anything.

A loss returns ``(loss, metrics)``: a scalar and a dict of scalars, as every ``gm.losses`` loss does. A
function that returns only the loss is adapted once, explicitly, with :func:`scalar_loss`; ``fit`` refuses
it otherwise (a clear error at trace time), so the return type is never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Int, PyTree

from genmodels.data import AbstractDataset
from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.train._ema import EMA


class TrainState(eqx.Module):
    """Everything a run needs to continue: the data position is ``step`` (datasets are pure in the step)."""

    params: PyTree  # nnx.State of the model's nnx.Param variables (float32 master copy)
    rest: PyTree  # the model's other nnx state (batch statistics, RNG counters), updated by the loss
    ema: PyTree | None  # EMA of params, or None
    opt_state: PyTree
    step: Int[Array, ""]  # number of completed optimiser steps
    bad_step: Int[Array, ""]  # -1, or the step whose loss/gradient was not finite
    key: Array  # key data (uint32) of the run's PRNG key


def _select(ok, new, old):
    def sel(n, o):
        if jax.dtypes.issubdtype(n.dtype, jax.dtypes.prng_key):
            data = jnp.where(ok, jax.random.key_data(n), jax.random.key_data(o))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(n))
        return jnp.where(ok, n, o)

    return jax.tree.map(sel, new, old)


def _cast_floats(tree, dtype):
    def cast(x):
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, tree)


class ScalarLoss(eqx.Module):
    """``fn(model, batch, key) -> loss`` adapted to the trainer's contract ``-> (loss, {})``."""

    fn: Callable

    def __call__(self, model, batch, key):
        return self.fn(model, batch, key), {}


def scalar_loss(fn: Callable) -> ScalarLoss:
    """Adapt a loss function that returns only a scalar loss to ``fit``'s ``(loss, metrics)`` contract."""
    if not callable(fn):
        raise ArgumentTypeError(f"fn must be callable as fn(model, batch, key), got {type(fn).__name__}.")
    return ScalarLoss(fn)


def _unpack_loss(out) -> tuple[Array, dict]:
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        got = f"an array of shape {jnp.shape(out)}" if isinstance(out, jax.Array) else type(out).__name__
        raise ArgumentTypeError(f"loss_fn must return (loss, metrics), a scalar loss and a dict of scalar metrics, "
                                f"as gm.losses do; got {got}. Adapt a function that returns only the loss with "
                                "gm.train.scalar_loss(fn).")  # fmt: skip
    loss, metrics = out
    if jnp.shape(loss) != ():
        raise ArgumentError(f"loss_fn must return a scalar loss, got shape {jnp.shape(loss)}.")
    for name, v in metrics.items():
        if jnp.shape(v) != ():
            raise ArgumentError(f"metric {name!r} returned by loss_fn must be a scalar, got shape {jnp.shape(v)}.")
    return jnp.asarray(loss, jnp.float32), {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}


def _make_step(graphdef, loss_fn, optimizer, ema, batch_sharding, compute_dtype, key_impl) -> Callable:
    """``one_step(state, dataset) -> (state, (loss, metrics))``: one optimiser step (module docstring)."""

    def one_step(state: TrainState, dataset: AbstractDataset):
        key = jax.random.wrap_key_data(state.key, impl=key_impl)
        data_key, loss_key = jax.random.split(key)
        batch = dataset.batch(data_key, state.step)
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, jax.tree.map(lambda _: batch_sharding, batch))
        step_key = jax.random.fold_in(loss_key, state.step)

        def objective(params, rest):
            # fresh Variable objects created at this trace level: nnx only lets a Variable (e.g. an RNG
            # counter) be mutated at the trace level where it was made
            params, rest = jax.tree.map(lambda v: v, (params, rest))
            b = batch
            if compute_dtype is not None:
                params, b = _cast_floats(params, compute_dtype), _cast_floats(batch, compute_dtype)
            model = nnx.merge(graphdef, params, rest)
            loss, metrics = _unpack_loss(loss_fn(model, b, step_key))
            _, _, new_rest = nnx.split(model, nnx.Param, ...)
            new_rest = jax.tree.map(lambda n, o: n if n.dtype == o.dtype else n.astype(o.dtype), new_rest, rest)
            return loss, (metrics, new_rest)

        (loss, (metrics, rest)), grads = jax.value_and_grad(objective, has_aux=True)(state.params, state.rest)
        ok = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads)) & (state.bad_step < 0)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        average = ema.update(state.ema, params, state.step) if state.ema is not None else None
        moved = (params, rest, average, opt_state)
        params, rest, average, opt_state = _select(ok, moved, (state.params, state.rest, state.ema, state.opt_state))
        bad_step = jnp.where((state.bad_step < 0) & ~ok, state.step, state.bad_step)
        step = state.step + ok.astype(state.step.dtype)
        new = TrainState(params, rest, average, opt_state, step, bad_step, state.key)
        return new, (loss, metrics)

    return one_step


def make_train_call(
    graphdef: Any,
    loss_fn: Callable,
    dataset_static: AbstractDataset,
    optimizer: optax.GradientTransformation,
    ema: EMA | None,
    *,
    mesh: jax.sharding.Mesh | None = None,
    compute_dtype: Any = None,
    steps_per_call: int = 1,
    donate: bool = True,
    key_impl: Any = None,
) -> Callable[[TrainState, PyTree, Array], tuple[TrainState, dict]]:
    """``call(state, dataset_arrays, n) -> (state, out)``: ``n <= steps_per_call`` steps in one program.

    ``n`` is traced (a ``fori_loop`` trip count), so one compilation serves every call length.
    ``out`` holds per-step ``loss`` (steps_per_call,) and ``metrics`` (entries past ``n`` are NaN) and the
    final ``bad_step``.
    ``dataset_arrays`` is the array part of the dataset (``eqx.partition(dataset, eqx.is_array)``), passed
    as an argument so that in-memory data is not baked into the program as a constant.
    """
    batch_sharding = NamedSharding(mesh, P("data")) if mesh is not None else None
    one_step = _make_step(graphdef, loss_fn, optimizer, ema, batch_sharding, compute_dtype, key_impl)

    def call(state: TrainState, dataset_arrays: PyTree, n: Int[Array, ""]):
        dataset = eqx.combine(dataset_arrays, dataset_static)
        if steps_per_call == 1:
            # straight-line program, no while loop: XLA:CPU runs convolutions inside loop bodies many times
            # slower (jax-ml/jax#12868; 13x for a small gated PixelCNN), so conv nets on a CPU train with 1
            state, outs = one_step(state, dataset)
            losses, metrics = jax.tree.map(lambda o: o[None], outs)
            return state, {"loss": losses, "metrics": metrics, "bad_step": state.bad_step}

        shapes = jax.eval_shape(lambda st: one_step(st, dataset)[1], state)
        buffers = jax.tree.map(lambda a: jnp.full((steps_per_call, *a.shape), jnp.nan, a.dtype), shapes)

        def body(i, carry):
            st, bufs = carry
            st, outs = one_step(st, dataset)
            return st, jax.tree.map(lambda b, o: b.at[i].set(o), bufs, outs)

        state, (losses, metrics) = jax.lax.fori_loop(0, n, body, (state, buffers))
        return state, {"loss": losses, "metrics": metrics, "bad_step": state.bad_step}

    kwargs: dict[str, Any] = {}
    if donate:
        kwargs["donate_argnums"] = 0
    if mesh is not None:
        replicated = NamedSharding(mesh, P())
        kwargs["out_shardings"] = replicated  # state and outputs replicated (a prefix for the whole output)
    return jax.jit(call, **kwargs)


def replicate(tree: PyTree, mesh: jax.sharding.Mesh | None) -> PyTree:
    """Fresh copies of ``tree``'s arrays: on the default device, or replicated over ``mesh``.

    Works with several processes (each passes the same values; every device gets the whole array).
    """
    if mesh is None:
        return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)
    sharding = NamedSharding(mesh, P())

    def put(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = put(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = jax.device_get(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree.map(put, tree)
