"""UniPC (Zhao et al. 2023): the unified predictor-corrector multistep sampler, data prediction."""

from __future__ import annotations

import abc
import warnings

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.samplers._base import _resolve_start_at_infinity
from genmodels.samplers._ipndm import check_order, check_warm_start
from genmodels.samplers._multistep import (
    AbstractMultistepSampler,
    AbstractWarmStart,
    History,
    LowerOrderStart,
    effective_order,
    empty_history,
    is_warm,
    latest,
    newest,
    previous,
    push,
    weighted_sum,
)


class AbstractUniPCVariant(eqx.Module):
    """The function B(h) of UniPC's update (any B(h) = O(h) keeps the order; the paper's two are values)."""

    @abc.abstractmethod
    def b(self, hh: Array) -> Array:
        """B(h) at hh = -h (data prediction; h the step in lambda = -log sigma)."""


class BH1(AbstractUniPCVariant):
    """B(h) = h (the paper's B1; diffusers' ``solver_type="bh1"``, recommended below 10 steps unguided)."""

    def b(self, hh):
        return hh


class BH2(AbstractUniPCVariant):
    """B(h) = e^h - 1 (the paper's B2; diffusers' ``solver_type="bh2"``, its default)."""

    def b(self, hh):
        return jnp.expm1(hh)


def _variant(value):
    """Converter: the strings "bh1" / "bh2" (diffusers' spelling) become the values; anything else is left
    for the check."""
    return {"bh1": BH1(), "bh2": BH2()}.get(value, value) if isinstance(value, str) else value


def _solve_padded(nodes: Array, rhs: Array, size: Int[Array, ""]) -> Array:
    """Solve sum_c nodes[c]^a rho_c = rhs[a] for a, c < ``size`` (traced); rho_c = 0 for c >= size. The
    system is padded to the static length of ``nodes`` with identity rows and columns."""
    k = nodes.shape[0]
    a, c = np.arange(k)[:, None], np.arange(k)[None, :]
    inside = (a < size) & (c < size)
    safe = jnp.where(jnp.arange(k) < size, nodes, 1.0)
    powers = jnp.cumprod(jnp.concatenate([jnp.ones((1, k), nodes.dtype), jnp.tile(safe, (k - 1, 1))]), axis=0)
    matrix = jnp.where(inside, powers, jnp.asarray(a == c, nodes.dtype))
    return jnp.linalg.solve(matrix, jnp.where(jnp.arange(k) < size, rhs, 0.0))


class _Terms(eqx.Module):
    """One UniPC update from the newest history entry m0 (at sigma_s) to sigma_t, with order p."""

    base: Array  # (sigma_t / sigma_s) x + (1 - sigma_t / sigma_s) m0
    b_h: Array  # B(h)
    rks: Array  # (k,): r_c = (lambda_{c+1} - lambda_0) / h for the older entries, then 1 (slot of model_t)
    b: Array  # (k,): b_a = h phi_{a+2}(h) (a + 1)! / B(h)
    inv_r: Array  # (k - 1,): 1 / r_c for the older entries that enter (zero for the others)


def _terms(hist: History, x: Array, sigma_t: Array, p: Int[Array, ""], variant: AbstractUniPCVariant) -> _Terms:
    k = hist.sigmas.shape[0]
    sigma_s, m0 = hist.sigmas[0], newest(hist)
    h = jnp.log(sigma_s / sigma_t)
    hh = -h
    older = jnp.arange(1, k) < p  # entries 1..p-1 enter the update
    r = jnp.where(older, jnp.log(sigma_s / hist.sigmas[1:]) / h, -1.0)  # lambda = -log sigma
    rks = jnp.concatenate([r, jnp.ones((1,), r.dtype)])
    b_h = variant.b(hh)
    h_phi, factorial, b = jnp.expm1(hh) / hh - 1.0, 1.0, []
    for a in range(k):
        b.append(h_phi * factorial / b_h)
        factorial *= a + 2
        h_phi = h_phi / hh - 1.0 / factorial
    ratio = sigma_t / sigma_s
    return _Terms(ratio * x + (1.0 - ratio) * m0, b_h, rks, jnp.stack(b), jnp.where(older, 1.0 / r, 0.0))


def _combine_d1(hist: History, t: _Terms, rho: Array) -> Array:
    """sum_c rho_c D1_c, D1_c = (m_{c+1} - m0) / r_c, as one weighted sum of the history's entries:
    weight rho_c / r_c on m_{c+1} and -sum_c rho_c / r_c on m0 ((k - 1,) coefficients, no (k - 1, ...) array)."""
    w = rho * t.inv_r
    return weighted_sum(hist, jnp.concatenate([-jnp.sum(w, keepdims=True), w]))


def predictor(hist: History, x: Array, sigma_t: Array, p: Int[Array, ""], variant) -> Array:
    """UniP of order p: x_t = base - B(h) sum_{c < p-1} rho_c D1_c with sum_c r_c^a rho_c = b_a (a < p - 1);
    rho = (1/2) for p = 2, as both references. A step to sigma_t = 0 returns m0."""
    safe_t = jnp.where(sigma_t > 0, sigma_t, 0.5 * hist.sigmas[0])
    t = _terms(hist, x, safe_t, p, variant)
    k = hist.sigmas.shape[0]
    if k == 1:
        out = t.base
    else:
        rho = _solve_padded(t.rks[:-1], t.b[:-1], p - 1)
        rho = jnp.where(p == 2, jnp.zeros_like(rho).at[0].set(0.5), rho)
        out = t.base - t.b_h.astype(x.dtype) * _combine_d1(hist, t, rho)
    return jnp.where(sigma_t > 0, out, newest(hist))


def corrector(hist: History, x_last: Array, model_t: Array, sigma_t, p: Int[Array, ""], variant) -> Array:
    """UniC of order p (the predictor's order of the last step): x_t = base - B(h) (sum_{c < p-1} rho_c D1_c
    + rho_{p-1} (model_t - m0)) with nodes (r_1, ..., r_{p-1}, 1); rho = (1/2) for p = 1."""
    t = _terms(hist, x_last, sigma_t, p, variant)
    k = hist.sigmas.shape[0]
    nodes = jnp.concatenate([t.rks[:-1], jnp.ones((1,), t.rks.dtype)])
    # the slot of model_t is column p - 1: move the 1 there
    nodes = jnp.where(jnp.arange(k) == p - 1, 1.0, nodes)
    rho = _solve_padded(nodes, t.b, p)
    rho = jnp.where(p == 1, jnp.zeros_like(rho).at[0].set(0.5), rho)
    rho_t = rho[p - 1].astype(x_last.dtype)
    older = _combine_d1(hist, t, jnp.where(jnp.arange(k - 1) < p - 1, rho[:-1], 0.0)) if k > 1 else 0.0
    return t.base - t.b_h.astype(x_last.dtype) * (older + rho_t * (model_t - newest(hist)))


with warnings.catch_warnings():  # UniPC takes ``order`` (the predictor's) but states the convergence order
    warnings.filterwarnings("ignore", message=".*has both an `__init__` method and a", category=UserWarning)

    class UniPC(AbstractMultistepSampler):
        """UniPC (Zhao et al. 2023) with data prediction: deterministic, NFE = steps.

        In lambda = -log sigma, h = lambda_t - lambda_s, with the current and earlier denoiser outputs
        m0 = D(x_s, sigma_s), m_c at lambda_c (r_c = (lambda_c - lambda_s) / h, D1_c = (m_c - m0) / r_c),
        and phi functions of hh = -h:

        * UniP-p (predictor, p = ``order``): x_t = (sigma_t/sigma_s) x_s + (1 - sigma_t/sigma_s) m0
          - B(h) sum_{c < p-1} rho_c D1_c, sum_c r_c^a rho_c = a! h phi_{a+2} / B(h) for a < p - 1;
        * UniC-p (corrector): once the next step has called the model at the predicted x_t, model_t =
          D(x_t, sigma_t), the same update with one more node (r = 1, D1 = model_t - m0) recomputes x_t with
          order p + 1; model_t is then reused as the next step's m0 (no extra call, so the last step is
          uncorrected).

        B(h) is the ``variant``: :class:`BH2` (e^h - 1, default) or :class:`BH1` (h). As both references,
        rho = 1/2 for the order-2 predictor and the order-1 corrector.

        Order: the corrector raises the predictor's order p to p + 1 (the paper's Theorem 3.1), so
        ``order`` states ``predictor_order + 1`` with the corrector (4 for the default UniPC-3) and
        ``predictor_order`` without it. The last step is the order-p predictor alone, whose local error
        O(h^{p+1}) matches the global order p + 1.

        ``lower_order_final`` follows the shared rule (fewer than 15 steps: step i uses order <= steps - i).
        diffusers' UniPC lowers the last steps on every schedule, which makes its last step first order and
        its global order 2 on a fixed grid ending above 0: for agreement with diffusers on 15 or more steps,
        run diffusers with ``lower_order_final=False``.

        References checked: wl-zhao/UniPC (``multistep_uni_pc_bh_update``) and diffusers'
        ``UniPCMultistepScheduler`` (predict_x0, thresholding off); the outputs agree with diffusers to
        float64 rounding (tests/test_samplers_multistep.py, slow).

        Args:
            sigmas: descending schedule, ``steps + 1`` entries.
            order: 1..3 (static), the predictor's order p (stored as ``predictor_order``).
            variant: :class:`BH2` (default) or :class:`BH1` (or "bh2" / "bh1").
            corrector: static; ``False`` drops UniC (the plain UniP-p predictor).
            warm_start: :class:`LowerOrderStart` (default) or :class:`RungeKuttaStart`.
            lower_order_final: static, default True.
            start_at_infinity: static, see :class:`AbstractStepSampler`.
        """

        predictor_order: int = eqx.field(static=True)
        variant: AbstractUniPCVariant = eqx.field(converter=_variant)
        corrector: bool = eqx.field(static=True)
        warm_start: AbstractWarmStart
        lower_order_final: bool = eqx.field(static=True)

        def __init__(
            self,
            sigmas,
            order: int = 3,
            *,
            variant: AbstractUniPCVariant | str = BH2(),
            corrector: bool = True,
            warm_start: AbstractWarmStart = LowerOrderStart(),
            lower_order_final: bool = True,
            start_at_infinity: bool | None = None,
        ):
            self.sigmas = sigmas
            self.start_at_infinity = _resolve_start_at_infinity(sigmas, start_at_infinity)
            self.predictor_order = order
            self.variant = variant
            self.corrector = corrector
            self.warm_start = warm_start
            self.lower_order_final = lower_order_final

        def __check_init__(self):
            check_order(self.predictor_order, 3, "order")
            check_warm_start(self, self.predictor_order)
            if not isinstance(self.variant, AbstractUniPCVariant):
                raise ArgumentError(
                    f"variant must be gm.samplers.BH1() or BH2() (or 'bh1' / 'bh2'), got {self.variant!r}."
                )
            for name in ("corrector", "lower_order_final"):
                if not isinstance(getattr(self, name), bool):
                    raise ArgumentTypeError(f"{name} must be True or False (static), got {getattr(self, name)!r}.")

        @property
        def order(self) -> int:
            return self.predictor_order + (1 if self.corrector else 0)

        @property
        def deterministic(self) -> bool:
            return True

        def init(self, denoiser, x, key):
            one = jnp.asarray(1, jnp.int32)
            return empty_history(self.predictor_order + 1, x), jnp.zeros_like(x), one, jnp.asarray(False)

        def step(self, denoiser, i, x, state, key):
            hist, x_last, p_last, correct = state  # hist: predictor_order + 1 slots, the newest at sigma_i-1
            sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
            model_t = denoiser(x, sigma)
            k = self.predictor_order
            p = effective_order(k, hist.count, i, self.num_steps, self.lower_order_final)
            new_hist = push(hist, model_t, sigma)  # in place; the corrector reads the k entries before it
            if self.corrector:
                sigma_t = jnp.where(correct, sigma, 0.5 * hist.sigmas[0])  # h != 0 where unused (gradients)
                corrected = corrector(previous(new_hist), x_last, model_t, sigma_t, p_last, self.variant)
                x = jnp.where(correct, corrected, x)
            x_next = predictor(latest(new_hist, k), x, sigma_next, p, self.variant)
            warm = is_warm(self.warm_start, k, hist.count)
            if warm is not False:
                warm = warm & (sigma_next > 0)
                predicted = x_next
                x_next = self.warm_or(warm, lambda _: predicted, denoiser, x, sigma, sigma_next, model_t)
            return x_next, (new_hist, x, p, (sigma_next > 0) & ~jnp.asarray(warm))

        @property
        def history_length(self) -> int:
            return self.predictor_order
