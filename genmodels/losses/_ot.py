"""Minibatch optimal transport between two equal-size batches, in plain JAX (runs under jit).

* :func:`sinkhorn`: entropic OT plan, log-domain Sinkhorn iterations with uniform marginals,
  P = argmin <P, C> - eps H(P), eps = ``epsilon`` x mean(C) (relative, as ott-jax does by default).
  Its cost <P, C> tends to the OT cost as eps -> 0.
* :func:`assignment`: an optimal one-to-one assignment (the exact OT plan between two uniform batches
  of equal size is a permutation) by Bertsekas' auction algorithm with eps-scaling, vectorised
  (every unassigned row bids at once). The returned permutation's total cost is within
  ``tol`` x (max C - min C) of the optimum; it is exact for costs whose differences exceed that.
  O(n^2) work per bidding round and typically a few hundred to a few thousand rounds: about 10 ms
  for n = 64 but about 1 s for n = 256 on a busy 2-core CPU, so it suits small batches and tests;
  training minibatches use the Sinkhorn coupling (about 15 ms for n = 256, 50 sweeps).
* :class:`OTCoupling`: re-pairs a (data, noise) batch for OT-CFM (Tong et al. 2023; Pooladian et al.
  2023). Every data row is kept once (so its label stays with it); the noise row is drawn from the
  Sinkhorn plan's row ("sinkhorn", default) or given by the assignment ("exact").

At the default epsilon = 0.05 x mean cost, 50 Sinkhorn sweeps converge (marginal error < 1e-2) on a
256-point batch of 8 Gaussians against N(0, I), and the plan's cost is about 1.25x the exact OT cost
(random pairing: about 7x); epsilon = 0.01 comes within 5% but needs several hundred sweeps.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from genmodels._checks import check_known, check_positive


def squared_distances(x: Float[Array, "n *dims"], y: Float[Array, "m *dims"]) -> Float[Array, "n m"]:
    """C_ij = ||x_i - y_j||^2 (rows flattened)."""
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)
    c = jnp.sum(x**2, -1)[:, None] + jnp.sum(y**2, -1)[None, :] - 2.0 * x @ y.T
    return jnp.maximum(c, 0.0)


def _check_cost(cost, square: bool = False):
    cost = jnp.asarray(cost)
    if cost.ndim != 2 or (square and cost.shape[0] != cost.shape[1]):
        want = "a square (n, n)" if square else "an (n, m)"
        raise ValueError(f"cost must be {want} matrix, got shape {tuple(cost.shape)}.")
    if not jnp.issubdtype(cost.dtype, jnp.floating):
        cost = cost.astype(jnp.result_type(float))
    return cost


def sinkhorn(cost: Float[Array, "n m"], epsilon: float = 0.05, iterations: int = 50) -> Float[Array, "n m"]:
    """Entropic OT plan between uniform marginals (rows sum to 1/n, columns to 1/m after the last
    iteration), regularisation eps = ``epsilon`` * mean(cost); ``iterations`` (static) Sinkhorn sweeps
    in one ``lax.scan``."""
    cost = _check_cost(cost)
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an int >= 1, got {iterations!r}.")
    check_positive("epsilon", epsilon)
    n, m = cost.shape
    eps = epsilon * jnp.maximum(jnp.mean(cost), jnp.finfo(cost.dtype).tiny)
    log_a, log_b = -math.log(n), -math.log(m)

    def sweep(carry, _):
        f, g = carry
        f = eps * (log_a - jax.nn.logsumexp((g[None, :] - cost) / eps, axis=1))
        g = eps * (log_b - jax.nn.logsumexp((f[:, None] - cost) / eps, axis=0))
        return (f, g), None

    zeros = (jnp.zeros((n,), cost.dtype), jnp.zeros((m,), cost.dtype))
    (f, g), _ = jax.lax.scan(sweep, zeros, None, length=iterations)
    return jnp.exp((f[:, None] + g[None, :] - cost) / eps)


def assignment(cost: Float[Array, "n n"], tol: float = 1e-4, max_rounds: int = 100_000) -> Int[Array, " n"]:
    """Permutation ``perm`` (row i -> column perm[i]) minimising sum_i cost[i, perm[i]].

    Auction algorithm (Bertsekas 1988) with eps-scaling: eps starts at range(C) / 4 and shrinks 5x per
    phase down to tol * range(C) / n, which guarantees a total cost within tol * range(C) of the
    optimum. ``max_rounds`` bounds the bidding rounds per phase (a safety net: rows still unassigned
    then are matched to the free columns in order).
    """
    cost = _check_cost(cost, square=True)
    n = cost.shape[0]
    if n == 1:
        return jnp.zeros((1,), jnp.int32)
    check_positive("tol", tol)
    phases = max(1, math.ceil(math.log(n / (4.0 * tol)) / math.log(5.0)) + 1)
    span = jnp.maximum(jnp.max(cost) - jnp.min(cost), jnp.finfo(cost.dtype).tiny)
    benefit = -(cost - jnp.min(cost)) / span  # in [-1, 0]: prices stay O(1) in float32
    eps_final = tol / n
    idx = jnp.arange(n)

    def person_of(owner):
        slot = jnp.where(owner >= 0, owner, n)
        return jnp.full((n + 1,), -1, jnp.int32).at[slot].set(idx.astype(jnp.int32))[:n]

    def phase(prices, eps):
        def cond(state):
            _, owner, rounds = state
            return jnp.any(owner < 0) & (rounds < max_rounds)  # some object unowned <=> some row unassigned

        def body(state):
            prices, owner, rounds = state
            assigned = person_of(owner)  # row -> column
            free = assigned < 0
            values = benefit - prices[None, :]
            j1 = jnp.argmax(values, axis=1)  # (lax.top_k is much slower inside a loop on CPU)
            v1 = jnp.max(values, axis=1)
            v2 = jnp.max(jnp.where(idx[None, :] == j1[:, None], -jnp.inf, values), axis=1)
            bid = jnp.where(free, prices[j1] + v1 - v2 + eps, -jnp.inf)
            best = jax.ops.segment_max(bid, j1, num_segments=n)  # highest bid per column
            top_bidder = free & (bid >= best[j1])
            winner = jnp.full((n + 1,), -1, jnp.int32).at[jnp.where(top_bidder, j1, n)].set(idx.astype(jnp.int32))[:n]
            hit = winner >= 0
            return jnp.where(hit, best, prices), jnp.where(hit, winner, owner), rounds + 1

        owner = jnp.full((n,), -1, jnp.int32)
        prices, owner, _ = jax.lax.while_loop(cond, body, (prices, owner, jnp.asarray(0)))
        return prices, owner

    prices = jnp.zeros((n,), cost.dtype)
    for k in range(phases):
        eps = jnp.maximum(0.25 * 0.2**k, eps_final).astype(cost.dtype)
        prices, owner = phase(prices, eps)
    perm = person_of(owner)
    # safety net (only if max_rounds was hit): pair the free rows with the free columns in order
    rows_order = jnp.argsort(perm >= 0, stable=True)
    cols_free = jnp.argsort(owner >= 0, stable=True).astype(jnp.int32)
    k_free = jnp.sum(perm < 0)
    fill = jnp.where(idx < k_free, cols_free, perm[rows_order])
    return perm.at[rows_order].set(fill)


class OTCoupling(eqx.Module):
    """Minibatch OT pairing of data x0 with noise x1 (squared Euclidean cost).

    ``method="sinkhorn"`` (default): for each data row i a noise row is drawn from row i of the
    entropic plan (``epsilon`` relative to the mean cost, ``iterations`` sweeps); noise rows may repeat.
    ``method="exact"``: x1 is permuted by :func:`assignment` (``tol``), a bijection (small batches).
    Call: ``coupling(key, x0, x1) -> x1_paired`` (same shape as x1, row i paired with x0[i]).
    """

    method: str = eqx.field(default="sinkhorn", static=True)
    epsilon: float = 0.05
    iterations: int = eqx.field(default=50, static=True)
    tol: float = 1e-4

    def __check_init__(self):
        check_known("method", self.method, ("exact", "sinkhorn"))

    def __call__(self, key: PRNGKeyArray, x0: Array, x1: Array) -> Array:
        if x0.shape != x1.shape:
            raise ValueError(f"OT coupling needs data and noise of one shape, got {x0.shape} and {x1.shape}.")
        cost = jax.lax.stop_gradient(squared_distances(x0, x1))
        if self.method == "exact":
            return x1[assignment(cost, self.tol)]
        plan = sinkhorn(cost, self.epsilon, self.iterations)
        cols = jax.random.categorical(key, jnp.log(jnp.maximum(plan, jnp.finfo(plan.dtype).tiny)), axis=1)
        return x1[cols]
