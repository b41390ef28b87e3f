"""The work of ``experiments/sampler_error.py`` (imports JAX, runs in float64): every sampler at every
budget on every target, scored against exact truth.

Per target, sampler, budget and seed:

One batch of noise per seed; every sampler starts from it (one solve per seed and cell):

* ``rms`` (deterministic samplers): RMS per coordinate of x_sampler - x_exact from the same noise, where
  x_exact is the probability-flow solution from sigma_max = 80 to sigma_min = 0.002 (Dopri5, rtol = atol =
  1e-10, float64) followed by the final step every schedule ends with, x -> D(x, sigma_min);
* ``swd`` / ``swd_baseline``: sliced W2 between the samples and exact samples, and between two exact sample
  sets of the same size (the finite-sample floor);
* ``occupancy``: the largest error in the fraction of samples per mixture component (``component_of``).

The schedule is Karras' (rho = 7) with as many steps as fit the budget (``gm.schedules.steps_for_nfe``);
the adaptive ODE runs a tolerance sweep and reports the NFE it spent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import genmodels as gm
from experiments.configs.sampler_error import TARGETS, Config
from genmodels.errors import ArgumentError

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def make_target(name: str, key):
    """The analytic target ``name`` (configs.sampler_error.TARGETS)."""
    if name == "eight-gaussians":
        return gm.targets.eight_gaussians()
    if name == "mixture-64":
        return gm.targets.random_mixture(key, 64, 8)
    return gm.targets.digits_mixture(key)


def make_sampler(name: str, sigmas):
    """``gm.samplers.<name>`` with its defaults on ``sigmas``."""
    return getattr(gm.samplers, name)(sigmas)


def _reference(target, noise):
    return gm.schedules.reference_endpoint(target, noise, SIGMA_MIN, SIGMA_MAX, 1e-10)


def _scores(target, x, key) -> dict:
    k1, k2, k3 = jax.random.split(key, 3)
    exact, exact2 = target.sample(k1, x.shape[0]), target.sample(k2, x.shape[0])
    weights = np.asarray(target.weights)
    freq = np.bincount(np.asarray(target.component_of(x)), minlength=weights.shape[0]) / x.shape[0]
    return {
        "swd": float(gm.metrics.sliced_wasserstein(k3, x, exact)),
        "swd_baseline": float(gm.metrics.sliced_wasserstein(k3, exact2, exact)),
        "occupancy": float(np.max(np.abs(freq - weights))),
    }


def _summary(per_seed: list[dict]) -> dict:
    """The per-seed scores and their mean and std (``<score>_std``; None for one seed)."""
    out = {"nfe": int(max(r["nfe"] for r in per_seed)), "per_seed": per_seed}
    for k in ("rms", "swd", "swd_baseline", "occupancy"):
        vals = np.asarray([r[k] for r in per_seed if k in r], np.float64)
        if vals.size:
            out[k], out[k + "_std"] = float(vals.mean()), (float(vals.std(ddof=1)) if vals.size > 1 else None)
    return out


def _cell(target, sampler, noises, refs, keys, final_step: bool = False) -> dict:
    """Scores of one sampler from each seed's noise (one solve per seed): the RMS error against the exact
    flow (deterministic samplers), sliced W2 and occupancy. ``final_step``: the sampler stops at sigma_min
    (the adaptive ODE), so the schedules' last step x -> D(x, sigma_min) is applied here (one evaluation)."""
    per_seed = []
    for noise, ref, key in zip(noises, refs, keys, strict=True):
        sol = gm.solve(target, sampler, key, noise.shape, noise=noise)
        x, nfe = sol.samples, int(np.max(np.asarray(sol.nfe)))
        if final_step:
            x, nfe = target(x, jnp.asarray(SIGMA_MIN, x.dtype)), nfe + 1
        row = {"nfe": nfe}
        if sampler.deterministic:
            row["rms"] = float(jnp.sqrt(jnp.mean((x - ref) ** 2)))
        row.update(_scores(target, x, jax.random.fold_in(key, 1)))
        per_seed.append(row)
    return _summary(per_seed)


def run_target(config: Config, name: str, log, save) -> dict:
    """Every sampler and budget (and the ODE sweep) on one target; ``save(partial)`` after each sampler."""
    key = jax.random.fold_in(jax.random.key(config.seed), TARGETS.index(name))
    target = make_target(name, jax.random.key(config.seed))
    dim = int(target.means.shape[-1])
    seeds = [jax.random.fold_in(key, s) for s in range(config.seeds)]
    noises = [jax.random.normal(jax.random.fold_in(k, 0), (config.batch, dim), jnp.float64) for k in seeds]
    t0 = time.perf_counter()
    refs = [_reference(target, z) for z in noises]
    log(f"{name}: exact reference ({config.seeds} x {config.batch} rows) in {time.perf_counter() - t0:.0f} s")
    keys = [jax.random.fold_in(k, 1) for k in seeds]
    result = {"target": name, "dim": dim, "rows": []}
    for sampler_name in config.samplers:
        factory = getattr(gm.samplers, sampler_name)
        for budget in config.nfe:
            try:
                steps = gm.schedules.steps_for_nfe(factory, budget, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
            except ArgumentError:
                continue  # the sampler's cheapest schedule costs more than this budget
            sampler = factory(gm.schedules.karras(steps, SIGMA_MIN, SIGMA_MAX))
            cell = _cell(target, sampler, noises, refs, keys)
            result["rows"].append({"sampler": sampler_name, "budget": budget, "steps": steps,
                                   "deterministic": bool(sampler.deterministic), **cell})  # fmt: skip
        save(result)
        log(f"{name}: {sampler_name} done ({time.perf_counter() - t0:.0f} s)")
    for tol in config.ode_tols:
        ode = gm.samplers.ODE(sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN, rtol=tol, atol=tol)
        cell = _cell(target, ode, noises, refs, keys, final_step=True)
        result["rows"].append({"sampler": "ODE", "tolerance": tol, "deterministic": True, **cell})
    save(result)
    return result


def run_fits(config: Config, log) -> list[dict]:
    """``gm.schedules.fit`` on the 64-D mixture at NFE 5, 8 and 10: fitted on one key's noise, scored on
    another's, against ``karras(rho=7)`` with the same steps."""
    target = gm.targets.random_mixture(jax.random.key(config.seed), 64, 8)
    held_out = jax.random.normal(jax.random.key(config.seed + 1000), (config.batch, 64), jnp.float64)
    ref = _reference(target, held_out)
    rows = []
    for name in config.fit_samplers:
        factory = getattr(gm.samplers, name)
        for budget in (5, 8, 10):
            try:
                fit = gm.schedules.fit(target, factory, budget, jax.random.key(config.seed + 7), (256, 64),
                                       iterations=config.fit_iterations)  # fmt: skip
            except ArgumentError:
                continue
            key = jax.random.key(3)
            karras = gm.schedules.karras(fit.steps, SIGMA_MIN, SIGMA_MAX)
            e_k = float(gm.schedules.endpoint_error(factory(karras), target, held_out, ref, key))
            e_f = float(gm.schedules.endpoint_error(factory(fit.sigmas), target, held_out, ref, key))
            rows.append({"sampler": name, "budget": budget, "steps": fit.steps, "nfe": fit.nfe, "karras_rms": e_k,
                         "fitted_rms": e_f, "gain": e_k / e_f, "sigmas": [float(s) for s in fit.sigmas]})  # fmt: skip
            log(f"fit {name} NFE {budget}: karras {e_k:.4g} -> fitted {e_f:.4g} (held-out noise)")
    return rows


def run_diff_sampler_protocol(config: Config, log) -> dict:
    """diff-sampler's solver and schedule choices (``_sampler_error_protocol``) on the 64-D digits mixture."""
    from experiments import _sampler_error_protocol as protocol

    target = make_target("digits-64", jax.random.key(config.seed))
    noise = jax.random.normal(jax.random.key(config.seed + 2000), (config.batch, 64), jnp.float64)
    rows = protocol.run_protocol(target, noise, log)
    return {"target": "digits-64", "rows": rows, "agreement": protocol.rank_agreement(rows)}


def run(config: Config, out: Path, *, quiet: bool = False) -> dict:
    """Every target (``config.targets``) and the schedule fits; writes results.json, results.md, PNGs."""
    from experiments import _sampler_error_report as report

    jax.config.update("jax_enable_x64", True)
    out.mkdir(parents=True, exist_ok=True)

    def log(msg):
        if not quiet:
            print(msg, flush=True)

    start = time.perf_counter()
    results = {"config": dict(vars(config)), "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "targets": [], "fits": []}

    def save(partial):  # a long run keeps what it has measured: results.partial.json after every sampler
        (out / "results.partial.json").write_text(json.dumps({**results, "targets": results["targets"] + [partial]}))

    for name in config.targets:
        results["targets"].append(run_target(config, name, log, save))
    if config.fit_samplers:
        results["fits"] = run_fits(config, log)
    if config.diff_sampler_protocol:
        results["diff_sampler_protocol"] = run_diff_sampler_protocol(config, log)
    results["wall_time_s"] = round(time.perf_counter() - start, 1)
    report.write(results, out)
    (out / "results.partial.json").unlink(missing_ok=True)
    if not quiet:
        print(report.markdown(results))
        print(f"wrote {out / 'results.json'}, {out / 'results.md'} and the error_*.png plots")
    return results
