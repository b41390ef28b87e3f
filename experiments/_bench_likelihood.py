"""The likelihood part of ``experiments/bench_samplers.py`` (imports JAX): ``gm.log_prob`` on exact samples
of a 64-D mixture, its overhead over its vector field, and the peers (score_sde's host scipy loop,
k-diffusion's ``log_likelihood``)."""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import genmodels as gm
from experiments._bench_peers import ATOL, RTOL, SIGMA_MAX, SIGMA_MIN, bench_kdiff_ll, bench_scipy_ll, blocking_time

GOAL_OVERHEAD_LL = 1.1


def field_call(mix, x, key, trace):
    """One evaluation of the augmented field log_prob integrates, jitted alone: g(y) = y - D(y, e^u) and
    the divergence estimate from one linearisation and the trace's Jacobian-vector products."""
    tangents = trace.tangents(key, x)

    @jax.jit
    def field(m, y, u, v):
        gy, lin = jax.linearize(lambda z: z - m(z, jnp.exp(u)), y)
        return gy, trace.divergence(v, jax.vmap(lin)(v))

    u = jnp.asarray(0.0, x.dtype)
    return lambda: jax.block_until_ready(field(mix, x, u, tangents))


def bench_ours(mix, x, truth, env):
    """gm.log_prob with the exact trace and with Hutchinson (1 probe): seconds, NFE, error, and the overhead
    = seconds / (NFE x one field evaluation), the field timed right after each solve."""
    args, key = env.args, jax.random.key(env.args.seed + 4)
    ours, runs = {}, {}
    for name, trace in (("exact", gm.likelihood.ExactTrace()), ("hutchinson", gm.likelihood.Hutchinson(1))):
        kw = dict(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, trace=trace, rtol=RTOL, atol=ATOL)

        def call(k=key, kw=kw):
            return jax.block_until_ready(gm.log_prob(mix, x, k, **kw))

        t0 = time.perf_counter()
        lp = call()
        t_first = time.perf_counter() - t0
        nfe = int(gm.likelihood.log_prob_result(mix, x, key, **kw).nfe)
        field = field_call(mix, x, key, trace)
        field()
        times, ratios, fields = [], [], []
        while len(times) < 3 or (sum(times) < args.budget and len(times) < 20):
            times.append(blocking_time(call, settle=True))
            fields.append(float(np.median([blocking_time(field, settle=i == 0) for i in range(5)])))
            ratios.append(times[-1] / (nfe * fields[-1]))
        med = float(np.median(times))
        runs[name] = call
        overhead = float(np.median(ratios))
        ours[name] = {"median_s": med, "min_s": float(np.min(times)), "compile_s": max(t_first - med, 0.0), "nfe": nfe,
                      "per_evaluation_s": med / nfe, "field_call_s": float(np.median(fields)), "overhead": overhead,
                      "overhead_goal": GOAL_OVERHEAD_LL, "overhead_ok": overhead <= GOAL_OVERHEAD_LL,
                      "mean_abs_err_vs_truth": float(np.mean(np.abs(np.asarray(lp) - truth)))}  # fmt: skip
        print(f"  log_prob {name}: {ours[name]}", file=sys.stderr, flush=True)
    return ours, runs


def bench_likelihood(env):
    args = env.args
    dim, n = 64, args.ll_points
    mix = gm.targets.random_mixture(jax.random.key(args.seed), dim, k=8)
    x = mix.sample(jax.random.key(args.seed + 3), n)
    truth = np.asarray(mix.log_prob(x, SIGMA_MIN))
    out = {"dim": dim, "points": n, "rtol": RTOL, "atol": ATOL, "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX}
    out["genmodels"], runs = bench_ours(mix, x, truth, env)
    spread = {}
    for probes in (1, args.probes):
        kw = dict(
            sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, trace=gm.likelihood.Hutchinson(probes), rtol=RTOL, atol=ATOL
        )
        ests = np.stack(
            [np.asarray(gm.log_prob(mix, x, jax.random.key(100 + i), **kw)) for i in range(args.spread_keys)]
        )
        spread[str(probes)] = {"mean_std_nats": float(ests.std(axis=0, ddof=1).mean()),
                               "mean_abs_err_vs_truth": float(np.mean(np.abs(ests.mean(0) - truth)))}  # fmt: skip
    out["hutchinson_spread"] = {"keys": args.spread_keys, "probe_arg": "Hutchinson(num_probes)", "by_probes": spread}
    out["scipy_rk45"] = bench_scipy_ll(mix, x, truth, runs, args)
    if env.kd is not None:
        out["k_diffusion"] = bench_kdiff_ll(mix, x, truth, runs, env)
    return out


def markdown(ll):
    """The likelihood tables (✗ marks a missed goal)."""
    mark = lambda ok: "" if ok else " ✗"  # noqa: E731
    lines = [f"log-likelihood, {ll['points']} points, {ll['dim']}-D mixture, rtol = atol = {ll['rtol']}:", "",
             "| method | trace | NFE | seconds | overhead | genmodels speedup | mean abs err vs log p (nats) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for trace, r in ll["genmodels"].items():
        lines.append(f"| gm.log_prob | {trace} | {r['nfe']} | {r['median_s']:.4g} | "
                     f"{r['overhead']:.2f}{mark(r['overhead_ok'])} | – | {r['mean_abs_err_vs_truth']:.3f} |")  # fmt: skip
    for trace, r in ll.get("scipy_rk45", {}).items():
        name = "scipy RK45, one jitted drift+div call" if trace.endswith("_fused") else "scipy RK45 (score_sde)"
        lines.append(f"| {name} | {trace.removesuffix('_fused')} | {r['nfe']} | {r['seconds']:.4g} | – | "
                     f"{r['speedup']:.2f} | {r['mean_abs_err_vs_truth']:.3f} |")  # fmt: skip
    if "k_diffusion" in ll:
        r = ll["k_diffusion"]
        lines.append(f"| k-diffusion log_likelihood | hutchinson (1 probe) | {r['nfe']} | {r['seconds']:.4g} | – | "
                     f"{r['speedup_vs_hutchinson']:.2f} (vs exact: {r['speedup_vs_exact']:.2f}) | "
                     f"{r['mean_abs_err_vs_truth']:.3f} |")  # fmt: skip
    if "hutchinson_spread" in ll:
        sp = ll["hutchinson_spread"]
        lines += ["", f"Hutchinson spread over {sp['keys']} keys (std of the estimate per point, averaged):", ""]
        lines += [f"- {p} probe(s): {v['mean_std_nats']:.3f} nats" for p, v in sp["by_probes"].items()]
    return "\n".join(lines)
