"""The main job: train small models end to end on a 2-core CPU in a few minutes and show the results.

    python experiments/demo.py --out runs/demo

1. flow matching (I-CFM, Linear path) on eight Gaussians, sampled from pure noise at t = 1;
2. EDM diffusion on two moons, sampled with Heun / DPM-Solver++(2M) / the adaptive ODE;
3. EDM diffusion with a small U-Net on scikit-learn's 8x8 digits (ships with the package), scored by
   bits/dim through ``gm.log_prob`` and a classifier-Fréchet distance (a digit classifier trained here,
   not Inception FID).

Each part writes its own run folder (``results.json``, pictures, checkpoints) under ``--out``; a summary
table is printed and written to ``--out/summary.json``. ``--quick`` cuts every part to a smoke run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import images, toy2d  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--quick", action="store_true", help="a smoke run of every part (seconds, not minutes)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    args = p.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        if not args.overwrite:
            p.error(f"--out {args.out} is not empty; pass --overwrite to replace the earlier demo there.")
        shutil.rmtree(args.out)
    toy_steps, img_steps = ("60", "20") if args.quick else ("3000", "1500")
    toy_eval = ["--n-eval", "1000", "--n-test", "64", "--density-grid", "16"] if args.quick else \
        ["--n-eval", "5000", "--n-test", "500", "--density-grid", "48"]
    img_eval = ["--num-samples", "64", "--bpd-images", "8", "--classifier-steps", "20", "--base", "8"] if args.quick else \
        ["--num-samples", "500", "--bpd-images", "120", "--classifier-steps", "400"]

    t0 = time.perf_counter()
    rows = []
    for family, dataset in (("cfm", "8gaussians"), ("edm", "moons")):
        res = toy2d.main(["--family", family, "--dataset", dataset, "--out", str(args.out / f"toy2d-{family}-{dataset}"),
                          "--steps", toy_steps, "--quiet", *toy_eval])
        rows.append({"part": f"2-D {family} on {dataset}", "steps": int(toy_steps),
                     "metric": f"swd {res['swd']:.3f} (data-vs-data {res['swd_baseline']:.3f})",
                     "nll": f"{res['nll']:.3f} nats" if res.get("nll") is not None else "-",
                     "folder": str(args.out / f"toy2d-{family}-{dataset}")})
    res = images.main(["--family", "edm", "--dataset", "digits", "--out", str(args.out / "digits-edm"),
                       "--steps", img_steps, "--quiet", *img_eval])
    best = min(res["samplers"].items(), key=lambda kv: kv[1]["classifier_fd"])
    rows.append({"part": "EDM U-Net on 8x8 digits", "steps": int(img_steps),
                 "metric": f"classifier-FD {best[1]['classifier_fd']:.2f} ({best[0]}, NFE {best[1]['nfe']}); "
                           f"real-vs-real {res['classifier_frechet']['baseline_real_vs_real']:.2f}",
                 "nll": f"{res['bits_per_dim']['mean']:.3f} bits/dim",
                 "folder": str(args.out / "digits-edm")})

    print("\n" + "=" * 100)
    print(f"{'part':<28}{'steps':>6}  {'sample quality':<58}{'likelihood':>16}")
    for r in rows:
        print(f"{r['part']:<28}{r['steps']:>6}  {r['metric']:<58}{r['nll']:>16}")
    print("pictures: " + ", ".join(sorted(str(q) for q in args.out.rglob("*.png"))[:12]))
    summary = {"rows": rows, "wall_time_s": time.perf_counter() - t0}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"total {summary['wall_time_s']:.0f} s; summary in {args.out / 'summary.json'}")
    return summary


if __name__ == "__main__":
    main()
