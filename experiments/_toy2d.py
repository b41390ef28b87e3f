"""The work of ``experiments/toy2d.py`` (imports JAX): train a family on a 2-D toy, sample, score, draw.

See ``experiments/toy2d.py`` for what is measured and ``experiments/configs/toy2d.py`` for the recipes.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import genmodels as gm
from experiments import build, catalog, cli, common
from experiments.configs.toy2d import GRID_STEPS, Config

# ---- model, loss, samplers ------------------------------------------------------------------------


def build_model(config: Config, key) -> nnx.Module:
    """The family's model around a fresh ``gm.nets.MLP``."""
    min_freq, max_freq = config.emb
    net = gm.nets.MLP(
        2,
        config.hidden,
        config.depth,
        rngs=nnx.Rngs(key),
        embedding=gm.nets.NoiseEmbedding(min_freq=min_freq, max_freq=max_freq),
    )
    return build.family_model(config.family, net, sigma_data=config.sigma_data)


def ladder(config: Config):
    lo, hi = config.sigma_range
    return gm.losses.ncsn_sigmas(config.levels, lo, hi)


def build_loss(config: Config):
    """``loss_fn(model, batch, key)`` of the family (the first stage's for ``rectified``)."""
    uses_ladder = config.family in ("ncsn", "ssm")
    return build.family_loss(
        config.family, sigma_range=config.sigma_range, ladder=ladder(config) if uses_ladder else None
    )


def build_sampler(spec: str, config: Config):
    """The sampler ``NAME[-STEPS]`` on the family's grid: flow models start at sigma = inf (t = 1 on the
    Linear path), the others at the top of their training range; ``ncsn``/``ssm`` run annealed Langevin on
    their ladder, DDIM for ``vp`` runs on the VP path's uniform-t grid."""
    name, steps = catalog.split_spec(spec)
    steps = steps or GRID_STEPS.get(name, 50)
    lo, hi = config.sigma_range
    if name == "ode":
        return build.sampler(name, sigma_max=min(hi, 80.0), sigma_min=lo)
    if name == "pc":  # 200 NFE
        return build.sampler(name, gm.schedules.log_uniform(steps, lo, hi))
    if name == "langevin":  # 501 NFE on the ladder
        on_ladder = config.family in ("ncsn", "ssm")
        sig = (
            gm.schedules.append_zero(ladder(config))
            if on_ladder
            else gm.schedules.log_uniform(20, max(lo, 0.01), min(hi, 5.0))
        )
        return build.sampler(name, sig, steps_per_level=50, step_size=0.5 * float(sig[-2]) ** 2)
    if name == "ddim" and config.family == "vp":
        return build.sampler(name, gm.schedules.uniform_t(gm.paths.VP(), steps))
    grid = gm.schedules.uniform_t(gm.paths.Linear(), steps) if config.flow else gm.schedules.karras(steps, lo, hi)
    return build.sampler(name, grid)


# ---- training ---------------------------------------------------------------------------------------


def fit_stage(model, loss_fn, dataset, *, key, steps: int, config: Config, run_dir, options: dict):
    """``gm.train.fit`` of one stage: AdamW with warm-up and cosine decay to 5 %, EMA, 20 steps per call."""
    schedule = gm.train.warmup_cosine(config.lr, min(config.warmup, steps - 1), steps, final_fraction=0.05)
    return gm.train.fit(
        model, loss_fn, dataset, key=key, steps=steps, optimizer=gm.train.adamw(schedule),
        ema=gm.train.EMA(config.ema_decay),
        run_dir=run_dir,
        checkpoints=gm.train.Checkpoints(every=options["checkpoint_every"]),
        log=gm.train.Logging(every=max(1, min(100, steps // 20)), progress=not options["quiet"]),
        execution=gm.train.Execution(steps_per_call=20),
    )  # fmt: skip


def train(config: Config, key, run_dir, options: dict) -> dict:
    """Train (both stages for ``rectified``); returns the models and what the report needs."""
    k_init, k_fit, k_pairs, k_reflow = jax.random.split(key, 4)
    model = build_model(config, k_init)
    dataset = gm.data.toy_dataset(config.dataset, config.batch)
    stage1 = config.steps
    if config.family == "rectified":
        stage1 = config.steps - round(config.reflow_fraction * config.steps)
    res = fit_stage(model, build_loss(config), dataset, key=k_fit, steps=stage1, config=config, run_dir=run_dir,
                    options=options)  # fmt: skip
    trained = {"model": res.model, "ema": res.ema_model, "fits": [res], "curves": {"train": res.history}}
    if config.family == "rectified":
        first = res.ema_model
        pair_sampler = gm.samplers.Heun(gm.schedules.uniform_t(gm.paths.Linear(), 32))
        x0, x1 = gm.losses.reflow_pairs(first, pair_sampler, k_pairs, (config.reflow_pairs, 2))
        pairs = gm.data.ArrayDataset((x0, x1), config.batch)
        second = nnx.clone(first)
        reflow_dir = gm.train.RunDirectory(
            run_dir.path / "reflow", resume=run_dir.resume, config=cli.train_dict(config)
        )
        res2 = fit_stage(second, gm.losses.reflow_loss, pairs, key=k_reflow, steps=config.steps - stage1,
                         config=config, run_dir=reflow_dir, options=options)  # fmt: skip
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


def evaluate(model, samplers: dict, config: Config, key, first=None) -> dict:
    """swd / mmd per sampler against fresh data, the baselines, the test NLL, and (given ``first``, the
    model before reflow) straightness and few-step quality before and after reflow. Samples are kept
    under the non-JSON key ``"_samples"``."""
    k_ref, k_base, k_proj, k_test, k_lp, k_sample, k_straight = jax.random.split(key, 7)
    n, data = config.n_eval, gm.data.toy(config.dataset)
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
    if config.n_test:
        lo, hi = config.sigma_range[0], min(config.sigma_range[1], 80.0)
        x_test = data(k_test, config.n_test)
        report["nll_sigma_range"] = [lo, hi]
        report["nll_note"] = NLL_NOTE.get(config.family, "probability-flow ODE, exact trace, Dopri5")
        try:
            report["nll"] = -float(jnp.mean(gm.log_prob(model, x_test, k_lp, sigma_min=lo, sigma_max=hi)))
        except Exception as err:  # a failed ODE solve is a result to report, not a crash
            report["nll"], report["nll_error"] = None, f"{type(err).__name__}: {str(err).splitlines()[0]}"
        if config.dataset == "8gaussians":
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


def pictures(trained: dict, samplers: dict, report: dict, config: Config, out: Path) -> list[str]:
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
    primary = config.samplers[0]
    dens = {
        "data (histogram)": common.histogram2d(ref, lim),
        f"{primary} samples": common.histogram2d(samples[primary], lim),
    }
    if config.density_grid:
        g = np.linspace(-lim, lim, config.density_grid)
        grid = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), jnp.float32)
        lo, hi = config.sigma_range[0], min(config.sigma_range[1], 80.0)
        try:
            lp = gm.log_prob(trained["ema"], grid, jax.random.key(0), sigma_min=lo, sigma_max=hi, rtol=1e-4, atol=1e-4)
            dens["model density (ODE)"] = np.exp(np.asarray(lp)).reshape(g.size, g.size)
        except Exception as err:  # noqa: BLE001 -- the picture is optional
            report["density_error"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
    common.image_panels(dens, out / "density.png", lim)
    sol = gm.solve(trained["ema"], samplers[primary], jax.random.key(1), (256, 2), save_trajectory=True)
    levels, traj = np.asarray(sol.levels), np.asarray(sol.trajectory)
    if config.flow:  # Linear path: x_t = x / (1 + sigma); the row at sigma = inf is the noise
        scale = np.where(np.isinf(levels), 1.0, 1.0 / (1.0 + np.where(np.isinf(levels), 0.0, levels)))
    else:  # variance-preserving view x / sqrt(1 + sigma^2)
        scale = 1.0 / np.sqrt(1.0 + levels**2)
    view = "x_t on the Linear path" if config.flow else "x / sqrt(1 + sigma^2)"
    title = f"{primary} trajectories, NFE {int(sol.nfe)}: 256 paths of {view}"
    common.trajectory_plot(traj * scale[:, None, None], out / "trajectories.png", lim, title)
    return ["samples.png", "density.png", "trajectories.png"]


# ---- the whole run ----------------------------------------------------------------------------------


def run(config: Config, run_dir: gm.train.RunDirectory, *, checkpoint_every: int | None = None,
        quiet: bool = False) -> dict:  # fmt: skip
    """Train, evaluate and draw in the opened ``run_dir``; writes ``results.json`` there and returns it."""
    start, out = time.perf_counter(), run_dir.path
    key = jax.random.key(config.seed)
    k_train, k_eval = jax.random.split(key)
    trained = train(config, k_train, run_dir, dict(checkpoint_every=checkpoint_every, quiet=quiet))
    train_time = time.perf_counter() - start
    samplers = {name: build_sampler(name, config) for name in config.samplers}
    report = evaluate(trained["ema"], samplers, config, k_eval, first=trained.get("first"))
    eval_time = time.perf_counter() - start - train_time
    files = pictures(trained, samplers, report, config, out)
    files.append(common.plot_losses(trained["curves"], out / "loss.png").name)
    fits = trained["fits"]
    primary = config.samplers[0]
    results = {
        "family": config.family, "dataset": config.dataset, "config": dataclasses.asdict(config),
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
