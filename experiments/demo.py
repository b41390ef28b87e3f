"""The main job: train small models end to end on a 2-core CPU in a few minutes and show the results.

    python -m experiments.demo --out runs/demo          # or: python experiments/demo.py --out runs/demo

1. flow matching (I-CFM, Linear path) on eight Gaussians, sampled from pure noise at t = 1;
2. EDM diffusion on two moons, sampled with Heun / DPM-Solver++(2M);
3. EDM diffusion with a small U-Net on scikit-learn's 8x8 digits (ships with the package), scored by
   bits/dim through ``gm.log_prob`` and a classifier-Fréchet distance (a digit classifier trained here,
   not Inception FID).

Each part is the ``run`` of ``toy2d.py`` / ``images.py`` with its own run folder (``results.json``,
pictures, checkpoints) under ``--out``; a summary table is printed and written to ``--out/summary.json``.
``--quick`` cuts every part to a smoke run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from experiments import cli, images, toy2d
from experiments.configs import demo as configs
from experiments.configs import images as image_configs
from experiments.configs import toy2d as toy_configs


def run_toys(config: configs.Config, workdir: Path) -> list[dict]:
    rows = []
    for part in config.toys:
        family, dataset = part.split("-", 1)
        recipe = dataclasses.replace(toy_configs.get_config(family=family, dataset=dataset), steps=config.toy_steps,
                                     n_eval=config.n_eval, n_test=config.n_test, density_grid=config.density_grid)  # fmt: skip
        res = toy2d.run(recipe, workdir / f"toy2d-{part}", quiet=True)
        rows.append({"part": f"2-D {family} on {dataset}", "steps": config.toy_steps,
                     "metric": f"swd {res['swd']:.3f} (data-vs-data {res['swd_baseline']:.3f})",
                     "nll": f"{res['nll']:.3f} nats" if res.get("nll") is not None else "-",
                     "folder": str(workdir / f"toy2d-{part}")})  # fmt: skip
    return rows


def run_digits(config: configs.Config, workdir: Path) -> dict:
    recipe = dataclasses.replace(image_configs.get_config("digits-edm-cpu"), steps=config.image_steps,
                                 base=config.image_base, num_samples=config.num_samples, bpd_images=config.bpd_images,
                                 classifier_steps=config.classifier_steps)  # fmt: skip
    res = images.run(recipe, workdir / "digits-edm", quiet=True)
    name, best = min(res["samplers"].items(), key=lambda kv: kv[1]["classifier_fd"])
    return {"part": "EDM U-Net on 8x8 digits", "steps": config.image_steps,
            "metric": f"classifier-FD {best['classifier_fd']:.2f} ({name}, NFE {best['nfe']}); "
                      f"real-vs-real {res['classifier_frechet']['baseline_real_vs_real']:.2f}",
            "nll": f"{res['bits_per_dim']['mean']:.3f} bits/dim", "folder": str(workdir / "digits-edm")}  # fmt: skip


def check_out(workdir: Path, overwrite: bool) -> None:
    if workdir.exists() and any(workdir.iterdir()) and not overwrite:
        raise FileExistsError(f"--out {workdir} is not empty; pass --overwrite to replace the earlier demo there.")


def run(config: configs.Config, workdir: str | Path, *, overwrite: bool = False) -> dict:
    """Run every part in ``workdir`` (a new or empty folder; ``overwrite`` deletes an earlier demo there),
    print the table and write ``workdir/summary.json``."""
    workdir = Path(workdir)
    check_out(workdir, overwrite)
    if workdir.exists():
        shutil.rmtree(workdir)
    t0 = time.perf_counter()
    rows = run_toys(config, workdir) + [run_digits(config, workdir)]
    print("\n" + "=" * 100)
    print(f"{'part':<28}{'steps':>6}  {'sample quality':<58}{'likelihood':>16}")
    for r in rows:
        print(f"{r['part']:<28}{r['steps']:>6}  {r['metric']:<58}{r['nll']:>16}")
    print("pictures: " + ", ".join(sorted(str(q) for q in workdir.rglob("*.png"))[:12]))
    summary = {"rows": rows, "wall_time_s": time.perf_counter() - t0}
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"total {summary['wall_time_s']:.0f} s; summary in {workdir / 'summary.json'}")
    return summary


def main(argv: list[str] | None = None) -> dict:
    config, opts = cli.parse(configs, argv, doc=__doc__, options=configs.Options)
    try:
        check_out(opts.out, opts.overwrite)
    except FileExistsError as err:
        raise SystemExit(f"demo.py: error: {err}") from None
    return run(config, opts.out, overwrite=opts.overwrite)


if __name__ == "__main__":
    main()
