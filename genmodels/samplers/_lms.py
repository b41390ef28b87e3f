"""Linear multistep in sigma, as k-diffusion's ``sample_lms``, with exact coefficients."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from genmodels._checks import check_count
from genmodels.errors import ArgumentError
from genmodels.samplers._dpmsolver import check_option, check_static_bool
from genmodels.samplers._multistep import (
    AbstractMultistepSampler,
    AbstractWarmStart,
    LowerOrderStart,
    effective_order,
    is_warm,
)

MAX_ORDER = 4
"""Highest supported order (k-diffusion's default; Adams-Bashforth methods above 4 have small stability
regions, and the Karras grid's ratios of neighbouring steps make them worse)."""


def lagrange_weights(nodes: Float[Array, " p"], a, b) -> Float[Array, " p"]:
    """c_j = int_a^b l_j(t) dt for the Lagrange basis l_j of the ``p`` (static) distinct ``nodes``.

    l_j has degree p - 1, so Gauss-Legendre with ceil(p / 2) points (exact to degree 2 ceil(p/2) - 1 >= p - 1)
    integrates it exactly up to rounding: no quadrature error, unlike k-diffusion's ``scipy.integrate.quad``
    with ``epsrel=1e-4``."""
    p = nodes.shape[0]
    xi, wq = np.polynomial.legendre.leggauss(max(1, (p + 1) // 2))
    t = 0.5 * (a + b) + 0.5 * (b - a) * jnp.asarray(xi, nodes.dtype)  # (q,)
    diff = nodes[:, None] - nodes[None, :]  # t_j - t_k
    eye = jnp.eye(p, dtype=bool)
    num = jnp.where(eye[:, :, None], 1.0, t[None, None, :] - nodes[None, :, None])  # (j, k, q): t_q - t_k
    basis = jnp.prod(num / jnp.where(eye, 1.0, diff)[:, :, None], axis=1)  # (j, q)
    return 0.5 * (b - a) * basis @ jnp.asarray(wq, nodes.dtype)


def lms_weights(sigmas: Float[Array, " k"], p: Int[Array, ""], sigma_next, k: int) -> Float[Array, " k"]:
    """Weights of the last ``p`` (traced, 1 <= p <= k) derivatives, newest first, padded with zeros to ``k``:
    the Lagrange integrals over [sigma, sigma_next] on the nodes ``sigmas[:p]``."""
    options = [jnp.pad(lagrange_weights(sigmas[:q], sigmas[0], sigma_next), (0, k - q)) for q in range(1, k + 1)]
    return jnp.stack(options)[p - 1]


class LMS(AbstractMultistepSampler):
    """Linear multistep (variable-step Adams-Bashforth) on the probability-flow ODE in sigma, as k-diffusion's
    ``sample_lms`` (checked against k-diffusion 0.1.1.post1). NFE = steps.

    With d_i = (x_i - D(x_i, sigma_i)) / sigma_i = dx/dsigma, step i of order p (``order``, lower while the
    history is short) takes

        x' = x + sum_{j<p} c_j d_{i-j},   c_j = int_{sigma_i}^{sigma_{i+1}} l_j(s) ds,

    l_j the Lagrange basis on sigma_i, ..., sigma_{i-p+1}. The integrals are exact (Gauss-Legendre with enough
    nodes, inside the program: new schedules never recompile). k-diffusion computes them on the host with
    ``scipy.integrate.quad(epsrel=1e-4)``; its first 21-point Gauss-Kronrod panel is exact for polynomials of
    degree <= 31, so for these cubics quad's quadrature error is rounding too: the samples agree to 2e-15 in
    float64 (``tests/test_samplers_dpm.py``). What differs is where the work happens: a host quad per coefficient
    and step there, a few scalar operations inside the compiled step here. The step to sigma = 0 integrates
    the extrapolated polynomial to 0, as k-diffusion does.

    Args:
        sigmas: descending schedule, ``steps + 1`` entries.
        order: static, 1..4 (default 4; the stated order, with exact starting values).
        warm_start: ``LowerOrderStart()`` (default: orders 1, 2, 3 on the first steps, as k-diffusion) or
            ``RungeKuttaStart()``.
        lower_order_final: static; diffusers' rule below 15 steps (default False: k-diffusion has none).
    """

    order: int = eqx.field(default=4, static=True)
    warm_start: AbstractWarmStart = eqx.field(default=LowerOrderStart(), kw_only=True)
    lower_order_final: bool = eqx.field(default=False, static=True, kw_only=True)

    def __check_init__(self):
        check_count("order", self.order, minimum=1)
        if self.order > MAX_ORDER:
            raise ArgumentError(f"order must be an int from 1 to {MAX_ORDER}, got {self.order}.")
        check_option("warm_start", self.warm_start, AbstractWarmStart, "LowerOrderStart()")
        check_static_bool("lower_order_final", self.lower_order_final)

    @property
    def deterministic(self) -> bool:
        return True

    def init(self, denoiser, x, key):
        # (d_i, ..., d_{i-order+1} as separate arrays, their sigmas, how many are filled): shifted by renaming,
        # not a stacked History, whose concatenate copies order x B x d numbers per step
        return (jnp.zeros_like(x),) * self.order, jnp.ones((self.order,), x.dtype), jnp.asarray(0, jnp.int32)

    def step(self, denoiser, i, x, state, key):
        past, past_sigmas, count = state
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        denoised = denoiser(x, sigma)
        ds = ((x - denoised) / sigma,) + past[:-1]
        sigmas = jnp.concatenate([sigma[None], past_sigmas[:-1]])

        def multistep(x):
            p = effective_order(self.order, count, i, self.num_steps, self.lower_order_final)
            # unfilled slots hold sigma = 1, which may equal a filled one: give them distinct stand-ins
            k = jnp.arange(self.order)
            c = lms_weights(jnp.where(k <= count, sigmas, -1.0 - k), p, sigma_next, self.order)
            return x + sum(c[j] * ds[j] for j in range(self.order))

        warm = is_warm(self.warm_start, self.order, count)
        x_new = self.warm_or(warm, multistep, denoiser, x, sigma, sigma_next, denoised)
        return x_new, (ds, sigmas, jnp.minimum(count + 1, self.order))

    @property
    def history_length(self) -> int:
        return self.order
