"""Tables and plots of ``experiments/sampler_error.py``'s results (markdown, PNG)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2e}"


def _cells(rows: list[dict], budgets: list[int], key: str) -> dict[str, list[str]]:
    """sampler -> one text per budget: the mean of ``key`` and, where it differs, the NFE spent."""
    table: dict[str, list[str]] = {}
    for r in rows:
        if "budget" not in r or key not in r:
            continue
        texts = table.setdefault(r["sampler"], ["-"] * len(budgets))
        text = _num(r[key])
        if r["nfe"] != r["budget"]:
            text += f" ({r['nfe']})"
        texts[budgets.index(r["budget"])] = text
    return table


def _table(title: str, table: dict[str, list[str]], budgets: list[int]) -> list[str]:
    lines = [f"**{title}**", "", "| sampler | " + " | ".join(f"NFE {b}" for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]  # fmt: skip
    lines += [f"| {name} | " + " | ".join(texts) + " |" for name, texts in table.items()]
    return lines + [""]


def markdown(results: dict) -> str:
    """The results as markdown: per target, the end-point error and the sliced-W2 tables, the ODE sweep, and
    the schedule fits."""
    budgets = list(results["config"]["nfe"])
    out = []
    for t in results["targets"]:
        rows = t["rows"]
        base = [r["swd_baseline"] for r in rows if "swd_baseline" in r]
        out += [f"### {t['target']} ({t['dim']}-D)", ""]
        out += _table("RMS end-point error against the exact flow (deterministic samplers; NFE spent in "
                      "parentheses where below the budget)", _cells(rows, budgets, "rms"), budgets)  # fmt: skip
        out += _table(f"Sliced W2 to exact samples (finite-sample baseline {np.mean(base):.2e})",
                      _cells(rows, budgets, "swd"), budgets)  # fmt: skip
        out += _table("Largest mode-occupancy error", _cells(rows, budgets, "occupancy"), budgets)
        ode = [r for r in rows if r["sampler"] == "ODE"]
        if ode:
            out += ["**Adaptive ODE (Dopri5) sweep**", "", "| rtol = atol | NFE | RMS error | sliced W2 |",
                    "|---|---|---|---|"]  # fmt: skip
            out += [f"| {r['tolerance']:g} | {r['nfe']} | {_num(r['rms'])} | {_num(r['swd'])} |" for r in ode]
            out.append("")
    if results.get("fits"):
        out += ["### Fitted schedules (64-D mixture, scored on held-out noise)", "",
                "| sampler | NFE | steps | Karras RMS | fitted RMS | gain |", "|---|---|---|---|---|---|"]  # fmt: skip
        out += [f"| {r['sampler']} | {r['nfe']} | {r['steps']} | {_num(r['karras_rms'])} | {_num(r['fitted_rms'])} "
                f"| {r['gain']:.2f}x |" for r in results["fits"]]  # fmt: skip
    if results.get("diff_sampler_protocol"):
        from experiments._sampler_error_protocol import markdown as protocol_markdown

        p = results["diff_sampler_protocol"]
        out += [""] + protocol_markdown(p["rows"], p["agreement"], p["target"])
    return "\n".join(out)


def plot(results: dict, out: Path) -> list[Path]:
    """One PNG per target: RMS error (deterministic samplers) and sliced W2 (all) against NFE, log-log."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    names = sorted({r["sampler"] for t in results["targets"] for r in t["rows"]})
    colors = plt.get_cmap("tab20")
    styles = {n: dict(color=colors(i % 20), ls="-" if i < 10 else "--", marker="o", ms=3, lw=1, label=n)
              for i, n in enumerate(names)}  # fmt: skip
    ticks = sorted({b for b in results["config"]["nfe"]} | {50, 80})
    for t in results["targets"]:
        fig, (ax_e, ax_w) = plt.subplots(1, 2, figsize=(13, 5))
        for name in names:
            rows = sorted((r for r in t["rows"] if r["sampler"] == name), key=lambda r: r["nfe"])
            if rows and "rms" in rows[0]:
                ax_e.plot([r["nfe"] for r in rows], [r["rms"] for r in rows], **styles[name])
            if rows:
                ax_w.plot([r["nfe"] for r in rows], [r["swd"] for r in rows], **styles[name])
        base = np.mean([r["swd_baseline"] for r in t["rows"]])
        ax_w.axhline(base, color="k", lw=0.8, ls=":", label="exact-vs-exact baseline")
        for ax, what in ((ax_e, "RMS end-point error vs exact flow"), (ax_w, "sliced W2 to exact samples")):
            ax.set(xscale="log", yscale="log", xlabel="NFE (model evaluations)", title=f"{t['target']}: {what}")
            ax.set_xticks(ticks, [str(v) for v in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.grid(True, which="both", lw=0.3)
        ax_e.legend(fontsize=6, ncol=2, title="deterministic samplers", title_fontsize=7)
        ax_w.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        path = out / f"error_{t['target']}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write(results: dict, out: Path) -> None:
    """results.json, results.md and the plots into ``out``."""
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(results) + "\n")
    plot(results, out)
