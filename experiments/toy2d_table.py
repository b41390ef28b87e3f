"""Run ``toy2d.py`` over a family x dataset grid and write the results table (markdown + JSON).

    python -m experiments.toy2d_table --out runs/toy2d_table            # 8 families x 3 datasets, 5000 steps
    python experiments/toy2d_table.py --out runs/toy2d_table --resume --docs docs/results.md   # after a stop

Each cell runs ``python -m experiments.toy2d --family F --dataset D --out OUT/F-D --steps N`` (the family's
recipe, ``experiments/configs/toy2d.py``) in its own process
(``--jobs J`` at a time; ``--single-threaded`` keeps each to one XLA CPU thread); with ``--resume`` a cell whose ``results.json``
exists is read, not rerun, and an unfinished one continues (``toy2d.py --resume``); ``--overwrite`` redoes
every cell; without either, an ``--out`` that holds cells is refused. Arguments after ``--`` go to every
cell. Writes ``OUT/table.json`` (one row per cell: swd, swd_baseline, their ratio, mmd, nll, few-step
numbers, wall time) and ``OUT/table.md``; with ``--docs FILE`` the markdown also replaces the part of FILE
between ``<!-- toy2d-table:start -->`` and ``<!-- toy2d-table:end -->``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from experiments import cli, common
from experiments.configs import toy2d_table as configs

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- toy2d-table:start -->", "<!-- toy2d-table:end -->"


def run_cell(family: str, dataset: str, config: configs.Config, opts: configs.Options, extra: list[str]) -> dict:
    out = opts.out / f"{family}-{dataset}"
    if (out / "results.json").exists() and opts.resume:
        return json.loads((out / "results.json").read_text())
    cmd = [sys.executable, "-m", "experiments.toy2d", "--family", family, "--dataset", dataset, "--out", str(out),
           "--steps", str(config.steps), "--seed", str(config.seed), "--quiet"] + extra  # fmt: skip
    if out.exists() and any(out.iterdir()) and (opts.resume or opts.overwrite):
        cmd.append("--resume" if opts.resume else "--overwrite")
    env = dict(os.environ)
    if opts.single_threaded:  # for --jobs ~ the number of cores
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
        env["OMP_NUM_THREADS"] = "1"
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        print(f"[{family}-{dataset}] FAILED after {time.perf_counter() - t:.0f} s:\n{tail}", flush=True)
        return {"family": family, "dataset": dataset, "error": tail}
    print(f"[{family}-{dataset}] {proc.stdout.strip().splitlines()[-1]}", flush=True)
    return json.loads((out / "results.json").read_text())


def summarise(res: dict) -> dict:
    row = {"family": res["family"], "dataset": res["dataset"]}
    if "error" in res:
        return {**row, "error": res["error"]}
    row.update({k: res.get(k) for k in ("swd", "swd_baseline", "swd_baseline_std", "swd_ratio", "mmd", "mmd_baseline", "nll", "nll_true",
                                        "primary_sampler", "steps", "train_time", "wall_time", "params_digest")})  # fmt: skip
    row["nfe"] = res["samplers"][res["primary_sampler"]]["nfe"]
    row["samplers"] = {k: {"swd_ratio": v["swd"] / res["swd_baseline"] if v["swd"] is not None else None, "nfe": v["nfe"]}
                       for k, v in res["samplers"].items()}  # fmt: skip
    for k in ("straightness_before", "straightness_after", "few_step"):
        if k in res:
            row[k] = res[k]
    return row


def markdown(rows: list[dict], families, datasets, command: str) -> str:
    cell = {(r["family"], r["dataset"]): r for r in rows}

    def ratio(f, d):
        r = cell.get((f, d))
        if r is None:
            return "-"
        if "error" in r or r["swd_ratio"] is None:
            return "failed"
        mark = "" if r["swd_ratio"] <= 2.0 else " **miss**"
        spread = f" ± {r['swd_baseline_std']:.3f}" if r.get("swd_baseline_std") is not None else ""
        return f"{r['swd_ratio']:.2f} ({r['swd']:.3f}/{r['swd_baseline']:.3f}{spread}){mark}"

    def nll(f, d):
        r = cell.get((f, d))
        if r is None or r.get("nll") is None:
            return "-"
        return f"{r['nll']:.3f}" + (f" (true {r['nll_true']:.3f})" if r.get("nll_true") is not None else "")

    def label(f):
        done = [cell[(f, d)] for d in datasets if "nfe" in cell.get((f, d), {})]
        return f"{f} ({done[0]['primary_sampler']}, {done[0]['nfe']})" if done else f

    header = ["family (primary sampler, NFE)"] + list(datasets)
    table1 = common.markdown_table(header, [[label(f)] + [ratio(f, d) for d in datasets] for f in families])
    table2 = common.markdown_table(["family"] + list(datasets), [[f] + [nll(f, d) for d in datasets] for f in families])
    lines = [f"Regenerate: `{command}`. Each cell is the recipe of its family (`experiments/configs/toy2d.py`): "
             "`python -m experiments.toy2d --family FAMILY --dataset DATASET --out DIR` reproduces it.", "",
             "swd / swd_baseline (swd / baseline ± the baseline's std over 5 pairs of data sets), sliced "
             "2-Wasserstein distance of the samples to fresh data; target <= 2 (cells above it are marked "
             "**miss**); a ratio within about 1 ± 2 std / baseline is within noise:", "", table1, "",
             "Test NLL in nats (probability-flow ODE, `gm.log_prob`; exact value for 8 Gaussians in brackets):",
             "", table2]  # fmt: skip

    def wall(f, d):
        r = cell.get((f, d))
        return "-" if r is None or r.get("wall_time") is None else f"{r['train_time']:.0f} / {r['wall_time']:.0f}"

    lines += [
        "",
        "Seconds per cell, training / whole run (sampling, NLL and pictures included), on the machine that "
        "ran the table:",
        "",
        common.markdown_table(["family"] + list(datasets), [[f] + [wall(f, d) for d in datasets] for f in families]),
    ]
    reflow = [r for r in rows if "few_step" in r]
    if reflow:
        lines += ["", "Rectified flow, before -> after one reflow round (straightness; swd / baseline of 1- and "
                  "2-step Euler):", ""]  # fmt: skip
        lines.append(common.markdown_table(["dataset", "straightness", "1 step", "2 steps"], [
            [r["dataset"], f"{r['straightness_before']:.3g} -> {r['straightness_after']:.2g}"]
            + [f"{r['few_step'][k]['swd_before'] / r['swd_baseline']:.1f} -> {r['few_step'][k]['swd_after'] / r['swd_baseline']:.1f}"
               for k in ("euler-1", "euler-2")] for r in reflow]))  # fmt: skip
    return "\n".join(lines) + "\n"


def run(config: configs.Config, opts: configs.Options, extra: list[str] = (), command: str = "") -> list[dict]:
    """Run (or read) every cell; write ``OUT/table.json``, ``OUT/table.md`` and, with ``opts.docs``, the
    docs block; returns the rows."""
    opts.out.mkdir(parents=True, exist_ok=True)
    cells = [(f, d) for f in config.families for d in config.datasets]
    with ThreadPoolExecutor(opts.jobs) as pool:
        results = list(pool.map(lambda c: run_cell(*c, config, opts, list(extra)), cells))
    rows = [summarise(r) for r in results]
    text = markdown(rows, config.families, config.datasets, command)
    common.write_json(opts.out / "table.json", {"command": command, "rows": rows})
    (opts.out / "table.md").write_text(text)
    if opts.docs:
        common.write_marked_block(opts.docs, START, END, text, heading="2-D toys")
    if not opts.quiet:
        print(text)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []  # options for every cell
    argv = argv[: argv.index("--")] if "--" in argv else argv
    config, opts = cli.parse(configs, argv, doc=__doc__, options=configs.Options)
    busy = [c for c in (opts.out.iterdir() if opts.out.is_dir() else ()) if c.is_dir() and any(c.iterdir())]
    if busy and not (opts.resume or opts.overwrite):
        raise SystemExit(f"toy2d_table.py: error: --out {opts.out} holds cells ({busy[0].name}, ...); pass --resume "
                         "to reuse finished cells and continue unfinished ones, or --overwrite to redo them")  # fmt: skip
    command = "python -m experiments.toy2d_table " + " ".join(argv) + (" -- " + " ".join(extra) if extra else "")
    return run(config, opts, extra, command)


if __name__ == "__main__":
    main()
