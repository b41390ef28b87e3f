"""Collect ``binary_density.py`` runs into the markdown table of ``docs/results.md``.

    python -m experiments.binary_table runs/ar/* [--docs docs/results.md]

Each argument is a run directory holding ``results.json``. Rows are grouped by dataset; the reference is
the published test NLL for the model's kind (``REFERENCES`` in ``experiments/configs/binary_density.py``:
FVSBN, NADE, MADE with one mask, MADE with mask sampling / ensembles, PixelCNN), and ``ours / ref`` is their
ratio (the target is within 5 %, i.e. <= 1.05); ``config`` is the named recipe the run's config equals
(``--config NAME`` of binary_density.py reproduces the row), "custom" when none; ``code`` is the commit that
ran (``code_version`` in results.json, "unrecorded" for runs made before it was recorded). With ``--docs
FILE`` the table replaces the part of FILE between ``<!-- binary-table:start -->`` and
``<!-- binary-table:end -->``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments import common
from experiments.configs.binary_density import REFERENCES

START, END = "<!-- binary-table:start -->", "<!-- binary-table:end -->"
ORDER = {"dna": 0, "mushrooms": 1, "digits": 2, "mnist": 3}


def describe(res: dict) -> tuple[str, str]:
    """(row label, reference key) of one run."""
    c = res["config"]
    model = res["model"]
    if model == "made":
        if c.get("num_masks", 1) > 1:
            pool = "fresh mask per minibatch" if c["num_masks"] >= 10_000 else f"{c['num_masks']} masks"
            extra = ", order-agnostic" if c.get("order_agnostic") else ""
            extra += ", direct" if c.get("direct") else ""
            label = f"MADE {c['hidden']} ({pool}{extra}; ensemble of {res['nll_kind'].split()[3]})"
            return label, "made_mask_sampling"
        return f"MADE {c['hidden']}" + (", direct" if c.get("direct") else ""), "made"
    if model == "nade":
        return f"NADE (H = {c['hidden'][0]})", "nade"
    if model == "transformer":
        return f"Transformer (width {c['dim']}, {c['layers']} blocks, {c['heads']} heads)", "made"
    if model == "pixelcnn":
        kind = "gated " if c.get("gated") else ""
        return f"PixelCNN ({kind}{c['layers']} layers x {c['channels']} channels)", "pixelcnn"
    return "FVSBN", "fvsbn"


def row(res: dict) -> dict:
    label, ref_key = describe(res)
    refs = REFERENCES.get(res["dataset"], {})
    ref = refs.get(ref_key)
    c = res["config"]
    opts = f"lr {c['lr']:g}" + (f", L2 {c['l2']:g}" if c.get("l2") else "")
    opts += f", batch {c['batch_size']}" if c.get("batch_size", 100) != 100 else ""
    return {"dataset": res["dataset"], "label": label, "test": res["test_nll_nats"], "valid": res["valid_nll_nats"],
            "single": res.get("test_nll_single_mask_nats"), "ref": ref, "ref_key": ref_key,
            "steps": res["steps"], "best_step": res.get("best_step"), "opts": opts,
            "minutes": res["wall_time_s"] / 60, "data": res["data"], "recipe": res.get("recipe") or "custom",
            "code": res["code_version"][:7] if res.get("code_version") else "unrecorded"}  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = []
    for ds in sorted({r["dataset"] for r in rows}, key=lambda d: ORDER.get(d, 9)):
        sub = [r for r in rows if r["dataset"] == ds]
        lines += [f"**{ds}** ({sub[0]['data']})", "",
                  "| model | test NLL (nats) | valid | published (kind) | ours / published | steps (best) | "
                  "options | config | minutes | code |", "|---|---:|---:|---|---:|---:|---|---|---:|---|"]  # fmt: skip
        for r in sub:
            ref = f"{r['ref']:.2f} ({r['ref_key']})" if r["ref"] else "-"
            ratio = f"{r['test'] / r['ref']:.3f}" if r["ref"] and ds != "mnist" else "-"
            test = f"{r['test']:.2f}" + (f" (one mask: {r['single']:.2f})" if r["single"] is not None else "")
            lines.append(f"| {r['label']} | {test} | {r['valid']:.2f} | {ref} | {ratio} | {r['steps']} "
                         f"({r['best_step']}) | {r['opts']} | `{r['recipe']}` | {r['minutes']:.1f} | {r['code']} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="binary_table.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories of binary_density.py, each "
                   "holding results.json")  # fmt: skip
    p.add_argument("--docs", type=Path, help="markdown file whose binary-table block is replaced (default: none, "
                   "the table is only printed)")  # fmt: skip
    args = p.parse_args(argv)
    found = [d for d in args.runs if (d / "results.json").exists()]
    if not found:
        raise SystemExit("no results.json in the given run directories")
    rows = [row(json.loads((d / "results.json").read_text())) for d in found]
    md = table(rows)
    print(md)
    if args.docs:
        common.write_marked_block(args.docs, START, END, md)


if __name__ == "__main__":
    main()
