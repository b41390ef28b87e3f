"""Ancestral sampling of autoregressive models over binary data (``gm.autoregressive``).

Step i draws dimension d = o_i of every batch row from its conditional,

    x_d ~ Bernoulli(sigmoid(l_i / T)),   u ~ U(0, 1) from fold_in(key, i),  x_d = 1[u < sigmoid(l_i / T)],

inside one ``lax.scan`` over the n dimensions (temperature T tempers each conditional; T = 1 is the
model). The model is a ``gm.protocols.AbstractAutoregressiveModel``; when it also is
``gm.protocols.Incremental`` (NADE, FVSBN, the Transformer) its cache (running activation, KV cache)
advances by one position per step, otherwise (MADE, PixelCNN) ``conditionals`` re-runs the full network. ``Ancestral(incremental=False)``
forces the full re-run for every model (the same draws, for comparisons).

Completion: with ``prefix`` (an array of the output shape) and ``num_known = k``, the first k dimensions
of the ordering are copied from ``prefix`` and the rest sampled given them.

``Solution.nfe`` counts calls of the model's conditional, one per dimension whose logit is computed: an
incremental step (one position) or a full network pass for the others. With a prefix, full-pass models
skip the k known steps (nfe = n - k); incremental models still advance their state through them (nfe = n).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from genmodels._checks import check_binary, check_positive, is_concrete
from genmodels.errors import ArgumentError
from genmodels.protocols import AbstractAutoregressiveModel, Incremental, require
from genmodels.samplers._base import AbstractSampler, Solution


def _check_model(model) -> None:
    require(
        "model", model, AbstractAutoregressiveModel, "gm.samplers.Ancestral",
        "Ancestral samples autoregressive models (gm.autoregressive.FVSBN, NADE, MADE, PixelCNN, Transformer); "
        "continuous models take a continuous sampler such as gm.samplers.Heun(gm.schedules.karras(18)).",
    )  # fmt: skip


class Ancestral(AbstractSampler):
    """Exact ancestral sampling, one dimension per step, in the model's ordering.

    Args:
        temperature: T > 0 dividing every conditional logit (traced: new values do not recompile).
        prefix: optional binary array of the output shape for completion; its first ``num_known``
            dimensions in the model's ordering are kept.
        num_known: k, how many leading dimensions (in the ordering) of ``prefix`` to keep (traced).
        incremental: use the model's incremental state when it has one (static).
    """

    temperature: Float[Array, ""] = eqx.field(default=1.0, converter=jnp.asarray)
    prefix: Array | None = None
    num_known: Int[Array, ""] | None = None
    incremental: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        check_positive("temperature", self.temperature)
        if (self.prefix is None) != (self.num_known is None):
            raise ArgumentError("completion needs both prefix (the known values) and num_known (how many to keep).")
        if self.prefix is not None and is_concrete(self.prefix):
            check_binary("prefix", jnp.asarray(self.prefix))
        if self.num_known is not None and is_concrete(self.num_known):
            k = jnp.asarray(self.num_known)
            if k.ndim != 0 or not jnp.issubdtype(k.dtype, jnp.integer) or int(k) < 0:
                raise ArgumentError(f"num_known must be a non-negative int, got {self.num_known!r}.")

    @property
    def order(self) -> None:
        """None: exact sampling, no discretisation error to converge."""
        return None

    @property
    def deterministic(self) -> bool:
        """False: every step draws a uniform from the key."""
        return False

    def run(self, model, key, shape, noise, save_trajectory):
        if noise is not None:
            raise ArgumentError(
                "Ancestral sampling draws its own uniforms from the key; noise= is meaningless for it. "
                "Pass a different key for different samples, or prefix=/num_known= to fix dimensions."
            )
        _check_model(model)
        ev = tuple(model.event_shape)
        if len(shape) != len(ev) + 1 or tuple(shape[1:]) != ev:
            raise ArgumentError(
                f"shape must be (batch, {', '.join(map(str, ev))}) for {type(model).__name__}, got {shape}."
            )
        batch, n = shape[0], model.n_dims
        dtype = jnp.result_type(float)
        order = jnp.asarray(model.ordering)
        temp = self.temperature.astype(dtype)
        if self.prefix is None:
            x0, k = jnp.zeros((batch, n), dtype), jnp.asarray(0, jnp.int32)
        else:
            prefix = jnp.asarray(self.prefix)
            if tuple(prefix.shape) != tuple(shape):
                raise ArgumentError(f"prefix must have the output shape {tuple(shape)}, got {tuple(prefix.shape)}.")
            x0 = check_binary("prefix", prefix).reshape(batch, n).astype(dtype)
            k = jnp.asarray(self.num_known, jnp.int32)
            k = eqx.error_if(k, k > n, f"num_known must be at most n_dims = {n}.")
            known = jnp.arange(n) < k
            x0 = jnp.where(known[jnp.argsort(order)][None, :], x0, 0)  # unknown entries start at 0
        incremental = self.incremental and isinstance(model, Incremental)
        state = model.init_cache(batch, dtype) if incremental else None

        def logit_at(state, i, x):
            if incremental:
                return model.step(state, i, x)
            return model.conditionals(x)[:, order[i]], state

        def body(carry, i):
            x, state, nfe = carry
            if incremental:
                logit, state = logit_at(state, i, x)
                nfe = nfe + 1
            else:  # skip the full pass for known dimensions
                logit, state = jax.lax.cond(
                    i < k, lambda s, x: (jnp.zeros((batch,), dtype), s), lambda s, x: logit_at(s, i, x), state, x
                )
                nfe = nfe + (i >= k)
            u = jax.random.uniform(jax.random.fold_in(key, i), (batch,), dtype)
            bit = (u < jax.nn.sigmoid(logit.astype(dtype) / temp)).astype(dtype)
            d = order[i]
            x = x.at[:, d].set(jnp.where(i < k, x[:, d], bit))
            return (x, state, nfe), (x if save_trajectory else None)

        carry0 = (x0, state, jnp.asarray(0, jnp.int32))
        (x, _, nfe), traj = jax.lax.scan(body, carry0, jnp.arange(n))
        x = x.reshape(shape)
        if not save_trajectory:
            return Solution(x, nfe)
        trajectory = jnp.concatenate([x0[None], traj], axis=0).reshape((n + 1, *shape))
        return Solution(x, nfe, trajectory, jnp.arange(n + 1))
