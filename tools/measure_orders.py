"""Measured convergence orders of every deterministic sampler of gm.samplers (docs/samplers.md).

    .venv/bin/python tools/measure_orders.py > /tmp/orders.md

Float64; the data are N(m, diag(s^2)) with m = (0.5, -1), s = (1, 0.3), whose probability-flow ODE has the
closed-form solution x(sigma) - m = (x_T - m) sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_T^2); 16 noise rows; the
error is the largest end-point difference at the schedule's last level (Karras, rho = 7, no final step to 0).
Two settings, as issue 10 asks:

* exact starting values: multistep samplers start with ``RungeKuttaStart()``, sigma 10 -> 0.05, N = 64, 128, 256;
* the default warm start: sigma 80 -> 0.05, N = 32, 45, 64.

The order is the least-squares slope of log error against log N.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import genmodels as gm  # noqa: E402

M, S = jnp.array([0.5, -1.0]), jnp.array([1.0, 0.3])


def errors(cls, steps, sigma_max, exact_start):
    target = gm.targets.DiagonalGaussian(M, S)
    z = jax.random.normal(jax.random.key(0), (16, 2), jnp.float64)
    out = []
    for n in steps:
        sig = gm.schedules.karras(n, 0.05, sigma_max, final_zero=False)
        kwargs = {}
        if exact_start and issubclass(cls, gm.samplers.AbstractMultistepSampler):
            kwargs["warm_start"] = gm.samplers.RungeKuttaStart()
        x = gm.sample(target, cls(sig, **kwargs), jax.random.key(1), (16, 2), noise=z)
        exact = M + (sig[0] * z - M) * jnp.sqrt(S**2 + sig[-1] ** 2) / jnp.sqrt(S**2 + sig[0] ** 2)
        out.append(float(jnp.max(jnp.abs(x - exact))))
    return np.array(out)


def slope(errs, steps):
    return -np.polyfit(np.log(steps), np.log(errs), 1)[0]


def main():
    samplers = sorted(
        (c for c in vars(gm.samplers).values()
         if isinstance(c, type) and issubclass(c, gm.samplers.AbstractStepSampler) and not inspect.isabstract(c)
         and c is not gm.samplers.AnnealedLangevin),  # an MCMC sampler: no stated order
        key=lambda c: c.__name__,
    )  # fmt: skip
    print("| sampler | stated | exact start: N = 64 / 128 / 256 | order | default start, sigma_max 80: N = 32 / 45 / 64 "
          "| order |\n|---|---|---|---|---|---|")  # fmt: skip
    for cls in samplers:
        probe = cls(gm.schedules.karras(8))
        if not probe.deterministic or probe.order is None:
            continue
        fine, coarse = (64, 128, 256), (32, 45, 64)
        e1, e2 = errors(cls, fine, 10.0, True), errors(cls, coarse, 80.0, False)
        fmt = " / ".join
        print(f"| {cls.__name__} | {probe.order} | {fmt(f'{e:.2e}' for e in e1)} | {slope(e1, fine):.2f} | "
              f"{fmt(f'{e:.2e}' for e in e2)} | {slope(e2, coarse):.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
