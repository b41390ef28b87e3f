"""Train a continuous generative model on a 2-D toy, sample it with several samplers, and score it.

    python experiments/toy2d.py --family cfm --dataset moons --out runs/toy2d/cfm-moons

Families (network: ``gm.nets.MLP``; per-family defaults in ``FAMILIES``, chosen once for all datasets):

* ``edm``: ``EDMModel`` (EDM preconditioning) + ``edm_loss``;  ``vp`` / ``ve``: ``EDMModel`` with VP / VE
  preconditioning + ``vp_loss`` / ``ve_loss`` (EDM's Table 1 columns);
* ``ncsn``: ``ScoreModel`` + ``ncsn_loss`` over a geometric ladder;  ``ssm``: the same score model trained
  by sliced score matching (SSM-VR) on data perturbed at the ladder's levels;
* ``cfm``: I-CFM / rectified-flow loss on the Linear path;  ``ot-cfm``: the same with a Sinkhorn minibatch
  OT coupling;  ``rectified``: ``cfm`` for (1 - reflow_fraction) of the steps, then one reflow round
  (pairs from the model's own ODE, retrained from its weights) for the rest; reports straightness
  and 1- and 2-step Euler quality before and after.

``DIR/results.json`` holds the config, wall time, ``params_digest`` (sha256 of the EMA parameters, which
are the ones sampled; ``raw_params_digest`` for the raw ones), per sampler ``swd`` / ``mmd`` / NFE, and at
the top level those of the first sampler: ``swd`` (sliced 2-Wasserstein distance of ``n_eval`` samples to
as many fresh data points), ``swd_baseline`` (the same distance between two fresh data sets of that
size with the same projections, averaged over 5 such pairs since it is itself noisy), ``mmd`` and
``mmd_baseline`` (on 2,000 points each), and ``nll``: minus the mean ``gm.log_prob`` of ``n_test`` fresh
points, in nats, through the probability-flow ODE over the family's training range of sigma
(``nll_sigma_range``). For NCSN and SSM that is the density of the score model's ODE sampler started at
the ladder's top level, not of the Langevin sampler and not a quantity those losses train; it is
reported for comparison only. On ``8gaussians`` ``nll_true`` is the exact value at the same sigma_min.
Pictures: ``samples.png``, ``density.png``, ``trajectories.png``, ``loss.png``.

The swd is a coarse metric: blurring the checkerboard with N(0, 0.1^2) noise raises it by only ~15%
(0.2: ~2.4x), so ``swd <= 2 x swd_baseline`` still allows visibly soft edges; look at ``samples.png``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``experiments`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import genmodels as gm
from experiments import common

FLOWS = ("cfm", "ot-cfm", "rectified")
# Defaults, one set per family for every dataset (the toys are normalised to unit variance per coordinate):
# AdamW with 200 warmup steps then cosine decay to 5%, EMA 0.999, MLP 4 x 256, batch 512.
# * edm: sigma_data = 0.5 (EDM's default). With 1.0, the data's actual std, gm.nets.MLP does not leave its
#   initial point (loss flat at 1.00 for 1000s of steps; the optimal F has no linear part then, and the
#   MLP's x-dependence starts tiny), see the report of issue 3.
# * ve: sigma in [0.02, 20] rather than EDM's [0.02, 100]: 20 is already ~10x the largest distance between
#   the toys' points, and VE preconditioning feeds x unscaled (c_in = 1) to the network.
# * ncsn / ssm: a 10-level geometric ladder 0.01..5 (NCSN's Technique 1: top level ~ the largest distance
#   between data points); annealed Langevin with 50 steps per level and step 0.5 sigma_i^2 (NCSN: 100, 0.2).
# * vp, ve, ncsn, ssm: batch 2048. Their 1 / sigma^2-weighted losses are noisier than EDM's and flow
#   matching's: at batch 512 they miss the target on the checkerboard (ncsn 3.9x the baseline swd, 1.4x
#   at 2048; the sampler was not the limit: longer Langevin chains were worse, converging to the model).
# * vp / ve embeddings: frequencies matched to their c_noise ranges ((M - 1) t in [0, 999]; ln(sigma / 2)).
COMMON = {"steps": 5000, "lr": 1e-3, "batch": 512, "hidden": 256, "depth": 4, "ema_decay": 0.999, "warmup": 200}
FAMILIES = {
    "edm": {"sigma_data": 0.5, "sigma_range": (0.002, 80.0), "samplers": ("heun", "dpm++2m")},
    "vp": {"batch": 2048, "sigma_range": (0.002, 80.0), "emb": (1e-3, 1.0), "samplers": ("heun", "ddim")},
    "ve": {"batch": 2048, "sigma_range": (0.02, 20.0), "emb": (0.2, 20.0), "samplers": ("heun", "pc")},
    "ncsn": {"batch": 2048, "sigma_range": (0.01, 5.0), "levels": 10, "samplers": ("langevin", "heun")},
    "ssm": {"batch": 2048, "sigma_range": (0.01, 5.0), "levels": 10, "samplers": ("langevin", "heun")},
    "cfm": {"sigma_range": (0.002, 80.0), "samplers": ("euler", "heun")},
    "ot-cfm": {"sigma_range": (0.002, 80.0), "samplers": ("euler", "heun")},
    "rectified": {"sigma_range": (0.002, 80.0), "reflow_fraction": 0.4, "reflow_pairs": 50_000,
                  "samplers": ("euler", "euler-1", "euler-2")},
}  # fmt: skip


# ---- model, loss, samplers ------------------------------------------------------------------------


def build_model(config: dict, key) -> nnx.Module:
    """The family's model around a fresh ``gm.nets.MLP``."""
    family = config["family"]
    min_freq, max_freq = config.get("emb", (1.0, 100.0))
    net = gm.nets.MLP(2, config["hidden"], config["depth"], rngs=nnx.Rngs(key), min_freq=min_freq, max_freq=max_freq)
    if family == "edm":
        return gm.models.EDMModel(net, sigma_data=config["sigma_data"])
    if family == "vp":
        return gm.models.EDMModel(net, precond=gm.denoisers.VPPrecond())
    if family == "ve":
        return gm.models.EDMModel(net, precond=gm.denoisers.VEPrecond())
    if family in ("ncsn", "ssm"):
        return gm.models.ScoreModel(net)
    return gm.models.PathModel(net, gm.paths.Linear(), gm.denoisers.Velocity())


def ladder(config: dict):
    lo, hi = config["sigma_range"]
    return gm.losses.ncsn_sigmas(config["levels"], lo, hi)


def build_loss(config: dict):
    """``loss_fn(model, batch, key)`` of the family (the first stage's for ``rectified``)."""
    family = config["family"]
    if family == "edm":
        return gm.losses.edm_loss
    if family == "vp":
        return gm.losses.vp_loss
    if family == "ve":
        lo, hi = config["sigma_range"]
        return functools.partial(gm.losses.ve_loss, sigma_min=lo, sigma_max=hi)
    if family == "ncsn":
        return functools.partial(gm.losses.ncsn_loss, sigmas=ladder(config))
    if family == "ssm":
        return functools.partial(gm.losses.ssm_loss, noise=gm.losses.Ladder(ladder(config)), variance_reduction=True)
    if family == "ot-cfm":
        return functools.partial(gm.losses.cfm_loss, coupling=gm.losses.OTCoupling(method="sinkhorn"))
    return gm.losses.cfm_loss


SAMPLERS = ("heun", "euler", "dpm++2m", "ddim", "euler-ancestral", "ode", "pc", "langevin", "euler-1", "euler-2")


def build_sampler(name: str, config: dict):
    """A sampler on the family's grid: flow models start at sigma = inf (t = 1 on the Linear path), the
    others at the top of their training range; ``ncsn``/``ssm`` run annealed Langevin on their ladder."""
    lo, hi = config["sigma_range"]
    flow = config["family"] in FLOWS

    def grid(steps):
        return gm.schedules.uniform_t(gm.paths.Linear(), steps) if flow else gm.schedules.karras(steps, lo, hi)

    S = gm.samplers
    if name == "heun":
        return S.Heun(grid(32))  # 63 NFE (62 from sigma = inf); 18 steps (EDM's images) blur sharp 2-D edges
    if name == "euler":
        return S.Euler(grid(100))
    if name in ("euler-1", "euler-2"):
        return S.Euler(grid(int(name[-1])))
    if name == "dpm++2m":
        return S.DPMSolverPP2M(grid(20))
    if name == "ddim":
        return S.DDIM(gm.schedules.uniform_t(gm.paths.VP(), 50)) if config["family"] == "vp" else S.DDIM(grid(50))
    if name == "euler-ancestral":
        return S.EulerAncestral(grid(50))
    if name == "ode":
        return S.ODE(sigma_max=min(hi, 80.0), sigma_min=lo)
    if name == "pc":
        return S.PredictorCorrector(gm.schedules.log_uniform(100, lo, hi))  # 200 NFE
    if name == "langevin":
        sig = gm.schedules.append_zero(ladder(config)) if "levels" in config else gm.schedules.log_uniform(20, max(lo, 0.01), min(hi, 5.0))
        return S.AnnealedLangevin(sig, steps_per_level=50, step_size=0.5 * float(sig[-2]) ** 2)  # 501 NFE
    raise ValueError(f"unknown sampler {name!r}; expected one of {SAMPLERS}.")


# ---- training ---------------------------------------------------------------------------------------


def train_config(config: dict) -> dict:
    """The part of the config that determines the trained parameters (stored as the run's config.json)."""
    skip = {"out", "resume", "overwrite", "checkpoint_every", "quiet", "samplers", "n_eval", "n_test", "density_grid"}
    return {k: v for k, v in config.items() if k not in skip}


def fit_stage(model, loss_fn, dataset, *, key, steps: int, config: dict, run_dir: Path):
    optimizer = gm.train.adamw(config["lr"], warmup=min(config["warmup"], steps - 1), schedule="cosine",
                               total_steps=steps, final_fraction=0.05)  # fmt: skip
    return gm.train.fit(
        model, loss_fn, dataset, key=key, steps=steps, optimizer=optimizer, ema_decay=config["ema_decay"],
        run_dir=run_dir, config=train_config(config), checkpoint_every=config["checkpoint_every"],
        resume=config["resume"], log_every=max(1, min(100, steps // 20)), progress=not config["quiet"],
        steps_per_call=20,
    )  # fmt: skip


def train(config: dict, key) -> dict:
    """Train (both stages for ``rectified``); returns the models and what the report needs."""
    k_init, k_fit, k_pairs, k_reflow = jax.random.split(key, 4)
    out = Path(config["out"])
    model = build_model(config, k_init)
    dataset = gm.data.toy_dataset(config["dataset"], config["batch"])
    stage1 = config["steps"]
    if config["family"] == "rectified":
        stage1 = config["steps"] - round(config["reflow_fraction"] * config["steps"])
    res = fit_stage(model, build_loss(config), dataset, key=k_fit, steps=stage1, config=config, run_dir=out)
    trained = {"model": res.model, "ema": res.ema_model, "fits": [res], "curves": {"train": res.history}}
    if config["family"] == "rectified":
        first = res.ema_model
        pair_sampler = gm.samplers.Heun(gm.schedules.uniform_t(gm.paths.Linear(), 32))
        x0, x1 = gm.losses.reflow_pairs(first, pair_sampler, k_pairs, (config["reflow_pairs"], 2))
        pairs = gm.data.ArrayDataset((x0, x1), config["batch"])
        second = nnx.clone(first)
        res2 = fit_stage(second, gm.losses.reflow_loss, pairs, key=k_reflow, steps=config["steps"] - stage1,
                         config=config, run_dir=out / "reflow")  # fmt: skip
        trained.update(model=res2.model, ema=res2.ema_model, first=first, fits=[res, res2])
        trained["curves"] = {"flow matching": res.history, "reflow": res2.history}
    return trained


# ---- evaluation -------------------------------------------------------------------------------------

NLL_NOTE = {
    "ncsn": "density of the score model's probability-flow ODE from the ladder's top level (not of annealed "
            "Langevin, and not a quantity the NCSN loss trains); for comparison only",
    "ssm": "density of the score model's probability-flow ODE from the ladder's top level (not of annealed "
           "Langevin, and not a quantity sliced score matching trains); for comparison only",
}  # fmt: skip


BASELINE_PAIRS = 5


def _distances(key, x, ref, m: int = 2000) -> dict:
    return {"swd": float(gm.metrics.sliced_wasserstein(key, x, ref)), "mmd": float(gm.metrics.mmd(x[:m], ref[:m]))}


def evaluate(model, samplers: dict, config: dict, key, first=None) -> dict:
    """swd / mmd per sampler against fresh data, the baselines, the test NLL, and (given ``first``, the
    model before reflow) straightness and few-step quality before and after reflow. Samples are kept
    under the non-JSON key ``"_samples"``."""
    k_ref, k_base, k_proj, k_test, k_lp, k_sample, k_straight = jax.random.split(key, 7)
    n, data = config["n_eval"], gm.data.toy(config["dataset"])
    ref = data(k_ref, n)
    # the baseline is itself random (e.g. the 8 Gaussians' component counts): average BASELINE_PAIRS pairs
    pairs = [_distances(k_proj, data(ka, n), data(kb, n)) for ka, kb in jax.random.split(k_base, (BASELINE_PAIRS, 2))]
    report = {"n_eval": n, "swd_baseline": float(np.mean([p["swd"] for p in pairs])),
              "swd_baseline_std": float(np.std([p["swd"] for p in pairs], ddof=1)),
              "mmd_baseline": float(np.mean([p["mmd"] for p in pairs])), "samplers": {},
              "_samples": {"data": np.asarray(ref)}, "_ref": np.asarray(ref)}  # fmt: skip
    for name, sampler in samplers.items():
        t = time.perf_counter()
        sol = gm.solve(model, sampler, k_sample, (n, 2))
        x = jax.block_until_ready(sol.samples)
        row = {**_distances(k_proj, x, ref), "nfe": int(sol.nfe), "seconds": time.perf_counter() - t}
        row["finite"] = bool(jnp.all(jnp.isfinite(x)))
        report["samplers"][name], report["_samples"][name] = row, np.asarray(x)
    t = time.perf_counter()
    if config["n_test"]:
        lo, hi = config["sigma_range"][0], min(config["sigma_range"][1], 80.0)
        x_test = data(k_test, config["n_test"])
        report["nll_sigma_range"] = [lo, hi]
        report["nll_note"] = NLL_NOTE.get(config["family"], "probability-flow ODE, exact trace, Dopri5")
        try:
            report["nll"] = -float(jnp.mean(gm.log_prob(model, x_test, k_lp, sigma_min=lo, sigma_max=hi)))
        except Exception as err:  # a failed ODE solve is a result to report, not a crash
            report["nll"], report["nll_error"] = None, f"{type(err).__name__}: {str(err).splitlines()[0]}"
        if config["dataset"] == "8gaussians":
            report["nll_true"] = -float(jnp.mean(gm.data.toy_target("8gaussians").log_prob(x_test, lo)))
        report["nll_seconds"] = time.perf_counter() - t
    if first is not None:
        straight = build_sampler("euler", config)
        report["straightness_before"] = float(gm.losses.straightness(first, straight, k_straight, (2000, 2)))
        report["straightness_after"] = float(gm.losses.straightness(model, straight, k_straight, (2000, 2)))
        report["few_step"] = {}
        for name in ("euler-1", "euler-2"):
            sampler = build_sampler(name, config)
            before = gm.sample(first, sampler, k_sample, (n, 2))
            after = gm.sample(model, sampler, k_sample, (n, 2))
            report["few_step"][name] = {"swd_before": _distances(k_proj, before, ref)["swd"],
                                        "swd_after": _distances(k_proj, after, ref)["swd"]}  # fmt: skip
            report["_samples"][f"{name} before reflow"] = np.asarray(before)
    return report


def pictures(trained: dict, samplers: dict, report: dict, config: dict, out: Path) -> list[str]:
    """samples.png, density.png and trajectories.png; returns the file names."""
    samples = report.pop("_samples")
    ref = report.pop("_ref")
    lim = float(np.quantile(np.abs(ref), 0.999)) * 1.25
    base = report["swd_baseline"]
    titles = {"data": "data"}
    for name, row in report["samplers"].items():
        titles[name] = f"{name}: NFE {row['nfe']}, swd {row['swd'] / base:.2f}x base"
    for name in samples:
        titles.setdefault(name, name)
    common.scatter_panels({titles[k]: v for k, v in samples.items()}, out / "samples.png", lim)
    primary = config["samplers"][0]
    dens = {"data (histogram)": common.histogram2d(ref, lim), f"{primary} samples": common.histogram2d(samples[primary], lim)}
    if config["density_grid"]:
        g = np.linspace(-lim, lim, config["density_grid"])
        grid = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), jnp.float32)
        lo, hi = config["sigma_range"][0], min(config["sigma_range"][1], 80.0)
        try:
            lp = gm.log_prob(trained["ema"], grid, jax.random.key(0), sigma_min=lo, sigma_max=hi, rtol=1e-4, atol=1e-4)
            dens["model density (ODE)"] = np.exp(np.asarray(lp)).reshape(g.size, g.size)
        except Exception as err:  # noqa: BLE001 -- the picture is optional
            report["density_error"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
    common.image_panels(dens, out / "density.png", lim)
    sol = gm.solve(trained["ema"], samplers[primary], jax.random.key(1), (256, 2), save_trajectory=True)
    levels, traj = np.asarray(sol.levels), np.asarray(sol.trajectory)
    if config["family"] in FLOWS:  # Linear path: x_t = x / (1 + sigma); the row at sigma = inf is the noise
        scale = np.where(np.isinf(levels), 1.0, 1.0 / (1.0 + np.where(np.isinf(levels), 0.0, levels)))
    else:  # variance-preserving view x / sqrt(1 + sigma^2)
        scale = 1.0 / np.sqrt(1.0 + levels**2)
    common.trajectory_plot(traj * scale[:, None, None], out / "trajectories.png", lim, f"{primary} trajectories")
    return ["samples.png", "density.png", "trajectories.png"]


# ---- the whole run ----------------------------------------------------------------------------------


def run(config: dict) -> dict:
    start = time.perf_counter()
    out = Path(config["out"])
    key = jax.random.key(config["seed"])
    k_train, k_eval = jax.random.split(key)
    trained = train(config, k_train)
    train_time = time.perf_counter() - start
    samplers = {name: build_sampler(name, config) for name in config["samplers"]}
    report = evaluate(trained["ema"], samplers, config, k_eval, first=trained.get("first"))
    eval_time = time.perf_counter() - start - train_time
    files = pictures(trained, samplers, report, config, out)
    files.append(common.plot_losses(trained["curves"], out / "loss.png").name)
    fits = trained["fits"]
    primary = config["samplers"][0]
    results = {
        "family": config["family"], "dataset": config["dataset"], "config": config,
        "steps": sum(f.step for f in fits), "final_loss": _last_loss(fits[-1].history),
        "params_digest": gm.train.params_digest(trained["ema"]),
        "raw_params_digest": gm.train.params_digest(trained["model"]),
        "primary_sampler": primary, "swd": report["samplers"][primary]["swd"],
        "swd_baseline": report["swd_baseline"], "mmd": report["samplers"][primary]["mmd"],
        **{k: v for k, v in report.items() if k != "samplers"}, "samplers": report["samplers"],
        "steps_per_sec": fits[0].steps_per_sec, "train_time": train_time, "eval_time": eval_time,
        "wall_time": time.perf_counter() - start, "files": sorted(files),
    }  # fmt: skip
    results["swd_ratio"] = results["swd"] / results["swd_baseline"]
    results["code_version"] = common.code_version()
    common.write_json(out / "results.json", results)
    return results


def _last_loss(history):
    rows = [r["loss"] for r in history if "loss" in r and "event" not in r]
    return rows[-1] if rows else None


def parse_args(argv=None) -> dict:
    """The run's config from the command line; bad values and unusable run directories are argparse errors
    (exit status 2) raised before anything is written. With ``--overwrite`` the previous run in ``--out``
    is deleted here (see ``common.prepare_run_dir``)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", required=True, choices=tuple(FAMILIES))
    p.add_argument("--dataset", required=True, choices=tuple(gm.data.TOYS))
    common.add_run_args(p, default_steps=COMMON["steps"])
    p.add_argument("--batch", type=common.positive_int, help=f"batch size (default {COMMON['batch']}; 2048 for vp, ve, ncsn, ssm)")
    p.add_argument("--lr", type=common.positive_float, help=f"peak learning rate (default {COMMON['lr']})")
    p.add_argument("--hidden", type=common.positive_int, help=f"MLP width (default {COMMON['hidden']})")
    p.add_argument("--depth", type=common.positive_int, help=f"MLP hidden layers (default {COMMON['depth']})")
    p.add_argument("--ema-decay", type=common.unit_interval, help=f"EMA decay (default {COMMON['ema_decay']})")
    p.add_argument("--samplers", nargs="+", metavar="NAME", help=f"samplers, first = primary; from {', '.join(SAMPLERS)}")
    p.add_argument("--n-eval", type=common.positive_int, default=10_000, help="samples for swd (default %(default)s)")
    p.add_argument("--n-test", type=common.nonnegative_int, default=2_000, help="test points for the NLL, 0 = skip")
    p.add_argument("--density-grid", type=common.nonnegative_int, default=64,
                   help="side of the grid for the model density picture, 0 = skip (default %(default)s)")
    p.add_argument("--reflow-fraction", type=common.unit_interval, help="rectified: share of --steps spent on reflow (default 0.4)")
    p.add_argument("--reflow-pairs", type=common.positive_int, help="rectified: number of reflow pairs (default 50000)")
    args = p.parse_args(argv)
    family = FAMILIES[args.family]
    config = {"family": args.family, "dataset": args.dataset, **COMMON}
    config.update({k: v for k, v in family.items() if k != "samplers"})
    for name in ("steps", "batch", "lr", "hidden", "depth", "ema_decay", "reflow_fraction", "reflow_pairs"):
        value = getattr(args, name)
        if value is not None:
            if name.startswith("reflow") and args.family != "rectified":
                p.error(f"--{name.replace('_', '-')} only applies to --family rectified")
            config[name] = value
    samplers = tuple(args.samplers) if args.samplers else family["samplers"]
    bad = [s for s in samplers if s not in SAMPLERS]
    if bad:
        p.error(f"unknown sampler(s) {', '.join(bad)}; choose from {', '.join(SAMPLERS)}")
    if len(set(samplers)) != len(samplers):
        p.error("--samplers lists a sampler twice")
    if args.family == "rectified":
        reflow = round(config["reflow_fraction"] * config["steps"])
        if reflow < 1 or reflow >= config["steps"]:
            p.error(f"--steps {config['steps']} with --reflow-fraction {config['reflow_fraction']} leaves no steps "
                    "for one of the two stages")  # fmt: skip
        if config["reflow_pairs"] < config["batch"]:
            p.error(f"--reflow-pairs ({config['reflow_pairs']}) must be at least --batch ({config['batch']})")
    if args.n_eval < 256:
        p.error("--n-eval must be >= 256 (the swd compares 256 quantiles)")
    config["sigma_range"] = list(config["sigma_range"])
    config.update(samplers=list(samplers), n_eval=args.n_eval, n_test=args.n_test, density_grid=args.density_grid,
                  seed=args.seed, out=str(args.out), resume=args.resume, overwrite=args.overwrite,
                  checkpoint_every=args.checkpoint_every, quiet=args.quiet)  # fmt: skip
    try:
        common.prepare_run_dir(args.out, resume=args.resume, overwrite=args.overwrite, owned=OWNED,
                               config=train_config(config))  # fmt: skip
    except common.RunDirError as err:
        p.error(str(err))
    return config


OWNED = ("results.json", "config.json", "metrics.jsonl", "checkpoints", "reflow", "samples.png", "density.png",
         "trajectories.png", "loss.png", "results.json.tmp", "config.json.tmp")  # fmt: skip


def main(argv=None) -> dict:
    config = parse_args(argv)
    results = run(config)
    print(f"{config['family']} on {config['dataset']}: swd {results['swd']:.4f} (baseline {results['swd_baseline']:.4f}, "
          f"ratio {results['swd_ratio']:.2f}), nll {results.get('nll')}, {results['wall_time']:.0f} s -> {config['out']}")  # fmt: skip
    return results


if __name__ == "__main__":
    main()
