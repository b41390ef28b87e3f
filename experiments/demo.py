"""The main job: train small models end to end on a 2-core CPU in a few minutes and show the results.

    python -m experiments.demo --out runs/demo          # or: python experiments/demo.py --out runs/demo
    python experiments/demo.py --quick --out runs/demo-quick --overwrite    # a smoke run, a few minutes

1. flow matching (I-CFM, Linear path) on eight Gaussians, sampled from pure noise at t = 1;
2. EDM diffusion on two moons, sampled with Heun / DPM-Solver++(2M);
3. EDM diffusion with a small U-Net on scikit-learn's 8x8 digits (ships with scikit-learn), scored by
   bits/dim through ``gm.log_prob`` and a classifier-Fréchet distance in the features of a fixed digit
   classifier shipped with the package (``gm.classifier_metric.feature_network("digits")``, not Inception
   FID), as mean ± std over 5 sampling seeds beside its floor (real vs real images) and its ceiling
   (uniform noise).

Each part is the ``run`` of ``toy2d.py`` / ``images.py`` with its own run folder (``results.json``,
pictures, checkpoints) under ``--out``; a summary table (100 columns) and the list of pictures are
printed, the table is written to ``--out/summary.json``. ``--quick`` cuts every part to a smoke run
(seconds of training: its scores are poor, read them against the same floor and ceiling). On a 2-core CPU
the full demo takes about 9-16 minutes, ``--quick`` a few (10 on a heavily shared machine).

The swd's "ratio" is the model's swd over the mean swd between two fresh data sets (its "data vs data"
floor, ± the spread over 5 such pairs): a ratio within about 1 ± 2 std / floor is within noise.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import textwrap
import time
from pathlib import Path

from experiments import cli, images, toy2d
from experiments.configs import demo as configs
from experiments.configs import images as image_configs
from experiments.configs import toy2d as toy_configs

WIDTH = 100  # the printed table fits 100 columns


def _part(workdir: Path, opts: configs.Options, run, recipe, quiet: bool, label: str) -> dict:
    """One part in ``workdir``: read back when finished and ``--resume`` is given, else run (continuing an
    unfinished run with ``--resume``)."""
    done = workdir / "results.json"
    if opts.resume and done.is_file():
        if not quiet:
            print(f"{label}: finished earlier, read from {done}", flush=True)
        return json.loads(done.read_text())
    if not quiet:
        print(f"{label} -> {workdir}", flush=True)
    resume = opts.resume and workdir.is_dir() and any(workdir.iterdir())
    return run(recipe, workdir, resume=resume, quiet=quiet)


def _pm(mean: float, std: float | None) -> str:
    return images.plus_minus(mean, std)


def run_toys(config: configs.Config, workdir: Path, opts: configs.Options) -> list[dict]:
    rows = []
    for i, part in enumerate(config.toys, 1):
        family, dataset = part.split("-", 1)
        recipe = dataclasses.replace(toy_configs.get_config(family=family, dataset=dataset), steps=config.toy_steps,
                                     n_eval=config.n_eval, n_test=config.n_test, density_grid=config.density_grid)  # fmt: skip
        folder = workdir / f"toy2d-{part}"
        label = f"[{i}/{len(config.toys) + 1}] 2-D {family} on {dataset}"
        res = _part(folder, opts, toy2d.run, recipe, opts.quiet, label)
        rows.append({"part": f"2-D {family} on {dataset}", "steps": config.toy_steps,
                     "metric": [f"swd {res['swd']:.3g} (ratio {res['swd'] / res['swd_baseline']:.2f})",
                                f"data vs data {_pm(res['swd_baseline'], res.get('swd_baseline_std'))}"],
                     "nll": f"{res['nll']:.3f} nats" if res.get("nll") is not None else "-",
                     "folder": str(folder)})  # fmt: skip
    return rows


def run_digits(config: configs.Config, workdir: Path, opts: configs.Options) -> dict:
    recipe = dataclasses.replace(image_configs.get_config("digits-edm-cpu"), steps=config.image_steps,
                                 base=config.image_base, num_samples=config.num_samples, bpd_images=config.bpd_images,
                                 fd_seeds=config.fd_seeds)  # fmt: skip
    n = len(config.toys) + 1
    res = _part(workdir / "digits-edm", opts, images.run, recipe, opts.quiet, f"[{n}/{n}] EDM U-Net on 8x8 digits")
    fd = res["classifier_frechet"]
    name, best = min(res["samplers"].items(), key=lambda kv: kv[1]["classifier_fd"]["mean"])
    metric = [f"FD {_pm(best['classifier_fd']['mean'], best['classifier_fd']['std'])} ({name}, NFE {best['nfe']})",
              f"floor: real vs real {_pm(fd['floor_real_vs_real']['mean'], fd['floor_real_vs_real']['std'])}",
              f"ceiling: noise {_pm(fd['ceiling_uniform_noise']['mean'], fd['ceiling_uniform_noise']['std'])}"]  # fmt: skip
    bpd = res["bits_per_dim"]
    return {"part": "EDM U-Net on 8x8 digits", "steps": config.image_steps, "metric": metric,
            "nll": f"{bpd['mean']:.2f} bits/dim", "folder": str(workdir / "digits-edm"),
            "fd_lines": images.fd_lines(res)}  # fmt: skip


def table(rows: list[dict]) -> list[str]:
    """The summary as lines of at most ``WIDTH`` characters: part, steps, sample quality (several lines per
    part: the score, then its baselines), likelihood."""
    head = f"{'part':<26}{'steps':>6}  {'sample quality':<48}{'likelihood':>18}"
    lines = ["=" * WIDTH, head, "-" * WIDTH]
    for r in rows:
        for j, m in enumerate(r["metric"]):
            if j == 0:
                lines.append(f"{r['part']:<26}{r['steps']:>6}  {m:<48}{r['nll']:>18}")
            else:
                lines.append(f"{'':<34}{m}")
    lines.append("=" * WIDTH)
    return lines


def pictures(workdir: Path) -> list[str]:
    """Every picture under ``workdir``: per part folder (relative to ``workdir``) its files, wrapped at
    ``WIDTH`` columns."""
    folders: dict[str, list[str]] = {}
    for q in sorted(workdir.rglob("*.png")):
        folders.setdefault(str(q.parent.relative_to(workdir)), []).append(q.name)
    lines = []
    for folder, names in folders.items():
        lines += textwrap.wrap(", ".join(names), WIDTH, initial_indent=f"  {folder}/: ", subsequent_indent=" " * 4)
    return lines


def check_out(workdir: Path, overwrite: bool, resume: bool = False) -> None:
    if workdir.exists() and any(workdir.iterdir()) and not (overwrite or resume):
        raise FileExistsError(f"--out {workdir} is not empty; pass --resume to finish an interrupted demo there "
                              "or --overwrite to replace it.")  # fmt: skip


def run(config: configs.Config, workdir: str | Path, opts: configs.Options | None = None) -> dict:
    """Run every part in ``workdir`` (a new or empty folder; ``--overwrite`` deletes an earlier demo there,
    ``--resume`` reuses its finished parts and continues an unfinished one), print the table and write
    ``workdir/summary.json``."""
    opts = opts or configs.Options(out=Path(workdir))
    workdir = Path(workdir)
    check_out(workdir, opts.overwrite, opts.resume)
    if workdir.exists() and opts.overwrite:
        shutil.rmtree(workdir)
    t0 = time.perf_counter()
    rows = run_toys(config, workdir, opts)
    digits = run_digits(config, workdir, opts)
    rows.append(digits)
    wall = time.perf_counter() - t0
    lines = table(rows) + ["", *digits["fd_lines"], "", f"pictures (under {workdir}):", *pictures(workdir)]
    lines.append(f"total {wall / 60:.1f} min; summary in {workdir / 'summary.json'}")
    print("\n" + "\n".join(lines))
    summary = {"rows": rows, "wall_time_s": round(wall, 1), "quick": config.quick}
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> dict:
    config, opts = cli.parse(configs, argv, doc=__doc__, options=configs.Options)
    try:
        check_out(opts.out, opts.overwrite, opts.resume)
    except FileExistsError as err:
        raise SystemExit(f"demo.py: error: {err}") from None
    return run(config, opts.out, opts)


if __name__ == "__main__":
    main()
