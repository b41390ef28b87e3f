"""diff-sampler's CIFAR-10 protocol on exact targets: the same solvers, orders and per-solver schedules as
the FID table in zju-pi/diff-sampler's ``diff-solvers-main/README.md`` (NFE 3-10, sigma from 80 to 0.002,
``num_steps`` levels and no final step to 0), scored by the RMS error against the exact flow at sigma_min.

Their schedules: ``polynomial`` (Karras, rho = 7) for Euler, Heun, iPNDM and iPNDM_v; ``logsnr`` (uniform in
log sigma) for DPM-Solver++(3M) and UniPC-3 (bh2, lower_order_final); ``time_uniform`` with rho = 2 (a VP
time grid, t_i = (1 + i / (N - 1) (eps^(1/2) - 1))^2 with eps = 1e-3, whose beta_d and beta_min put sigma(1) at
sigma_max and sigma(eps) at sigma_min) for DEIS-tAB3. Their FID numbers are quoted as published.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import genmodels as gm

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0

# diff-sampler README, "FID on CIFAR-10 (unconditional, 32x32)", NFE 3..10 (None: not reachable).
PUBLISHED_CIFAR10_FID = {
    "Euler": (93.36, 66.76, 49.66, 35.62, 27.93, 22.32, 18.43, 15.69),
    "Heun": (None, 319.87, None, 99.74, None, 38.06, None, 15.93),
    "DPM-Solver++(3M)": (110.03, 46.52, 24.97, 11.99, 6.74, 4.54, 3.42, 3.00),
    "UniPC-3": (109.61, 45.20, 23.98, 11.14, 5.83, 3.99, 3.21, 2.89),
    "DEIS-tAB3": (56.01, 25.66, 14.39, 9.40, 6.94, 5.55, 4.68, 4.09),
    "iPNDM-4": (47.98, 24.82, 13.59, 7.05, 5.08, 3.69, 3.17, 2.77),
    "iPNDM_v-4": (67.58, 40.26, 23.58, 14.00, 9.83, 7.34, 5.93, 4.95),
}
NFES = (3, 4, 5, 6, 7, 8, 9, 10)


def _polynomial(levels: int):
    return gm.schedules.karras(levels - 1, SIGMA_MIN, SIGMA_MAX, final_zero=False)


def _logsnr(levels: int):
    return gm.schedules.log_uniform(levels - 1, SIGMA_MIN, SIGMA_MAX, final_zero=False)


def _time_uniform(levels: int, rho: float = 2.0, eps: float = 1e-3):
    beta_d = 2 * (np.log(SIGMA_MIN**2 + 1) / eps - np.log(SIGMA_MAX**2 + 1)) / (eps - 1)
    beta_min = np.log(SIGMA_MAX**2 + 1) - 0.5 * beta_d
    t = (1 + np.arange(levels) / (levels - 1) * (eps ** (1 / rho) - 1)) ** rho
    return jnp.asarray(np.sqrt(np.exp(0.5 * beta_d * t**2 + beta_min * t) - 1))


S = gm.samplers
SOLVERS = {  # name in their table -> (sampler factory, schedule of `levels` entries)
    "Euler": (S.Euler, _polynomial),
    "Heun": (S.Heun, _polynomial),
    "DPM-Solver++(3M)": (lambda s: S.DPMSolverPP3M(s), _logsnr),
    "UniPC-3": (lambda s: S.UniPC(s, order=3), _logsnr),
    "DEIS-tAB3": (lambda s: S.DEIS(s, order=3), _time_uniform),
    "iPNDM-4": (lambda s: S.IPNDM(s, order=4), _polynomial),
    "iPNDM_v-4": (lambda s: S.IPNDMV(s, order=4), _polynomial),
}


def _sampler_at(name: str, nfe: int):
    """The solver ``name`` on its schedule, with exactly ``nfe`` evaluations, or None (as '-' in their table)."""
    factory, schedule = SOLVERS[name]
    for levels in range(2, nfe + 2):
        sampler = factory(schedule(levels))
        cost = gm.schedules.sampler_nfe(sampler)
        if cost == nfe:
            return sampler
        if cost > nfe:
            return None
    return None


def run_protocol(target, noise, log) -> list[dict]:
    """RMS error at sigma_min against the exact flow from ``sigma_max * noise``, per solver and NFE."""
    ode = gm.samplers.ODE(sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN, rtol=1e-10, atol=1e-10, max_steps=16384)
    exact = gm.solve(target, ode, jax.random.key(0), noise.shape, noise=noise).samples
    rows = []
    for name in SOLVERS:
        for nfe, fid in zip(NFES, PUBLISHED_CIFAR10_FID[name], strict=True):
            sampler = _sampler_at(name, nfe)
            if sampler is None:
                continue
            x = gm.solve(target, sampler, jax.random.key(1), noise.shape, noise=noise).samples
            rms = float(jnp.sqrt(jnp.mean((x - exact) ** 2)))
            rows.append({"solver": name, "nfe": nfe, "rms": rms, "cifar10_fid": fid})
        log(f"diff-sampler protocol: {name} done")
    return rows


def rank_agreement(rows: list[dict]) -> list[dict]:
    """Per NFE: Spearman's rank correlation between the exact RMS errors and the published FIDs, over the
    solvers that have both."""
    out = []
    for nfe in NFES:
        pairs = [(r["rms"], r["cifar10_fid"]) for r in rows if r["nfe"] == nfe and r["cifar10_fid"] is not None]
        if len(pairs) < 3:
            continue
        a, b = (np.argsort(np.argsort(np.asarray(v))) for v in zip(*pairs, strict=True))
        out.append({"nfe": nfe, "solvers": len(pairs), "spearman": float(np.corrcoef(a, b)[0, 1])})
    return out


def markdown(rows: list[dict], agreement: list[dict], target_name: str) -> list[str]:
    names = list(SOLVERS)
    lines = [f"### diff-sampler's CIFAR-10 protocol on {target_name}: exact RMS error (published CIFAR-10 FID)", "",
             "| solver | " + " | ".join(f"NFE {n}" for n in NFES) + " |", "|---|" + "---|" * len(NFES)]  # fmt: skip
    for name in names:
        cells = []
        for nfe in NFES:
            r = next((r for r in rows if r["solver"] == name and r["nfe"] == nfe), None)
            fid = PUBLISHED_CIFAR10_FID[name][NFES.index(nfe)]
            cells.append("-" if r is None else f"{r['rms']:.2e} ({'-' if fid is None else fid})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| NFE | solvers | Spearman rank correlation (exact RMS vs published FID) |", "|---|---|---|"]
    lines += [f"| {a['nfe']} | {a['solvers']} | {a['spearman']:+.2f} |" for a in agreement]
    return lines + [""]
