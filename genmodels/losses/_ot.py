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
* Couplings re-pair a (data, noise) batch for OT-CFM (Tong et al. 2023; Pooladian et al. 2023), as
  values: :class:`SinkhornCoupling` draws each data row's noise row from the Sinkhorn plan's row,
  :class:`ExactCoupling` permutes the noise by the assignment. Every data row is kept once (so its
  label stays with it). A new coupling is one subclass of :class:`AbstractCoupling`.

Numbers are traced leaves (``epsilon``, ``tol``): a new value reuses the compiled program. Counts that
set the program's loops stay static (``iterations``).

At the default epsilon = 0.05 x mean cost, 50 Sinkhorn sweeps converge (marginal error < 1e-2) on a
256-point batch of 8 Gaussians against N(0, I), and the plan's cost is about 1.25x the exact OT cost
(random pairing: about 7x); epsilon = 0.01 comes within 5% but needs several hundred sweeps.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, Real

from genmodels._arrays import Number, like, number
from genmodels._checks import check_count, check_positive
from genmodels.errors import ArgumentError

# eps of the auction's scaling phases, 0.25 x 0.2^k, in float64 (cast to the cost's dtype at use)
_PHASE_EPS = 0.25 * 0.2 ** np.arange(64, dtype=np.float64)


def squared_distances(x: Float[Array, n * dims], y: Float[Array, m * dims]) -> Float[Array, "n m"]:
    """C_ij = ||x_i - y_j||^2 (rows flattened)."""
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)
    c = jnp.sum(x**2, -1)[:, None] + jnp.sum(y**2, -1)[None, :] - 2.0 * x @ y.T
    return jnp.maximum(c, 0.0)


def _check_cost(cost, square: bool = False):
    cost = jnp.asarray(cost)
    if cost.ndim != 2 or (square and cost.shape[0] != cost.shape[1]):
        want = "a square (n, n)" if square else "an (n, m)"
        raise ArgumentError(f"cost must be {want} matrix, got shape {tuple(cost.shape)}.")
    if not jnp.issubdtype(cost.dtype, jnp.floating):
        cost = cost.astype(jnp.result_type(float))
    return cost


def sinkhorn(
    cost: Float[Array, "n m"], epsilon: Real[ArrayLike, ""] = 0.05, iterations: int = 50
) -> Float[Array, "n m"]:
    """Entropic OT plan between uniform marginals (rows sum to 1/n, columns to 1/m after the last
    iteration), regularisation eps = ``epsilon`` * mean(cost) (``epsilon`` may be traced);
    ``iterations`` (static) Sinkhorn sweeps in one ``lax.scan``."""
    cost = _check_cost(cost)
    iterations = check_count("iterations", iterations)
    check_positive("epsilon", epsilon)
    n, m = cost.shape
    eps = like(epsilon, cost) * jnp.maximum(jnp.mean(cost), jnp.finfo(cost.dtype).tiny)
    log_a, log_b = -math.log(n), -math.log(m)

    def sweep(carry, _):
        f, g = carry
        f = eps * (log_a - jax.nn.logsumexp((g[None, :] - cost) / eps, axis=1))
        g = eps * (log_b - jax.nn.logsumexp((f[:, None] - cost) / eps, axis=0))
        return (f, g), None

    zeros = (jnp.zeros((n,), cost.dtype), jnp.zeros((m,), cost.dtype))
    (f, g), _ = jax.lax.scan(sweep, zeros, None, length=iterations)
    return jnp.exp((f[:, None] + g[None, :] - cost) / eps)


def _phases(n: int, tol: Real[ArrayLike, ""]) -> Int[ArrayLike, ""]:
    """Number of eps-scaling phases, 0.25 x 0.2^k down to tol / n: a Python int for a concrete ``tol``,
    a traced int otherwise (at most the 64 tabulated phases)."""
    if not isinstance(tol, jax.core.Tracer):
        return min(len(_PHASE_EPS), max(1, math.ceil(math.log(n / (4.0 * float(tol))) / math.log(5.0)) + 1))
    k = jnp.ceil(jnp.log(n / (4.0 * tol)) / math.log(5.0)).astype(jnp.int32) + 1
    return jnp.clip(k, 1, len(_PHASE_EPS))


def assignment(
    cost: Float[Array, "n n"], tol: Real[ArrayLike, ""] = 1e-4, max_rounds: int = 100_000
) -> Int[Array, " n"]:
    """Permutation ``perm`` (row i -> column perm[i]) minimising sum_i cost[i, perm[i]].

    Auction algorithm (Bertsekas 1988) with eps-scaling: eps starts at range(C) / 4 and shrinks 5x per
    phase down to tol * range(C) / n, which guarantees a total cost within tol * range(C) of the
    optimum (``tol`` may be traced: the phases run in a ``lax.fori_loop``). ``max_rounds`` bounds the
    bidding rounds per phase (a safety net: rows still unassigned then are matched to the free columns
    in order).
    """
    cost = _check_cost(cost, square=True)
    n = cost.shape[0]
    if n == 1:
        return jnp.zeros((1,), jnp.int32)
    check_positive("tol", tol)
    span = jnp.maximum(jnp.max(cost) - jnp.min(cost), jnp.finfo(cost.dtype).tiny)
    benefit = -(cost - jnp.min(cost)) / span  # in [-1, 0]: prices stay O(1) in float32
    eps_final = like(tol / n, cost)
    phase_eps = like(_PHASE_EPS, cost)
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

    def scaled(k, carry):
        return phase(carry[0], jnp.maximum(phase_eps[k], eps_final))

    start = (jnp.zeros((n,), cost.dtype), jnp.full((n,), -1, jnp.int32))
    _, owner = jax.lax.fori_loop(0, _phases(n, tol), scaled, start)
    perm = person_of(owner)
    # safety net (only if max_rounds was hit): pair the free rows with the free columns in order
    rows_order = jnp.argsort(perm >= 0, stable=True)
    cols_free = jnp.argsort(owner >= 0, stable=True).astype(jnp.int32)
    k_free = jnp.sum(perm < 0)
    fill = jnp.where(idx < k_free, cols_free, perm[rows_order])
    return perm.at[rows_order].set(fill)


# ---- couplings ----------------------------------------------------------------------------------------


class AbstractCoupling(eqx.Module):
    """A pairing of data x0 with noise x1 within a minibatch (squared Euclidean cost).

    Call: ``coupling(key, x0, x1) -> x1_paired`` (same shape as x1; row i paired with x0[i]).
    """

    @abc.abstractmethod
    def pair(
        self, key: PRNGKeyArray, x0: Float[Array, batch * dims], x1: Float[Array, batch * dims]
    ) -> Float[Array, batch * dims]:
        """The noise rows re-ordered (or re-drawn) to pair with the data rows."""

    def __call__(
        self, key: PRNGKeyArray, x0: Float[Array, batch * dims], x1: Float[Array, batch * dims]
    ) -> Float[Array, batch * dims]:
        if x0.shape != x1.shape:
            raise ArgumentError(f"OT coupling needs data and noise of one shape, got {x0.shape} and {x1.shape}.")
        return self.pair(key, x0, x1)


class SinkhornCoupling(AbstractCoupling):
    """Each data row i draws its noise row from row i of the entropic OT plan (:func:`sinkhorn`, with
    ``epsilon`` relative to the mean cost and ``iterations`` sweeps); noise rows may repeat.

    ``epsilon`` is a traced leaf (a new value reuses the compiled program); ``iterations`` is static.
    """

    epsilon: Number = eqx.field(default=0.05, converter=number("epsilon", low=0.0))
    iterations: int = eqx.field(default=50, static=True, converter=lambda n: check_count("iterations", n))

    def pair(self, key, x0, x1):
        cost = jax.lax.stop_gradient(squared_distances(x0, x1))
        plan = sinkhorn(cost, self.epsilon, self.iterations)
        cols = jax.random.categorical(key, jnp.log(jnp.maximum(plan, jnp.finfo(plan.dtype).tiny)), axis=1)
        return x1[cols]


class ExactCoupling(AbstractCoupling):
    """x1 permuted by the optimal assignment (:func:`assignment`, within ``tol`` x range of the cost): a
    bijection, exact OT between the two uniform batches. Its cost grows fast with the batch (about 1 s
    for 256 rows on a 2-core CPU), so it suits small batches. ``tol`` is a traced leaf."""

    tol: Number = eqx.field(default=1e-4, converter=number("tol", low=0.0))

    def pair(self, key, x0, x1):
        cost = jax.lax.stop_gradient(squared_distances(x0, x1))
        return x1[assignment(cost, self.tol)]
