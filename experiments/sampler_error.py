"""The exact sampler benchmark: every continuous sampler of gm.samplers at budgets of 3 to 35 model
evaluations, on analytic targets whose probability-flow map and samples are exact.

    python -m experiments.sampler_error --out runs/sampler_error         # about an hour on 2 CPU cores
    python experiments/sampler_error.py --quick --out /tmp/se --overwrite  # smoke run, a few minutes

Targets: eight Gaussians (2-D), a random 8-component 64-D mixture, and a 64-D mixture fitted to the 8x8
digits (low-rank-plus-diagonal covariances: image-like curvature). For each sampler and budget the sampler
runs at the largest NFE it can reach at or below the budget, on Karras' schedule (rho = 7) from 80 to 0.002
and a final step to 0, and is scored by its RMS end-point error against the exact flow from the same noise
(deterministic samplers; a float64 Dopri5 solve at rtol 1e-10), its sliced W2 to exact samples beside the
exact-vs-exact baseline, and its largest mode-occupancy error. The adaptive ODE runs a tolerance sweep.
gm.schedules.fit then tunes the schedule of a few samplers at NFE 5, 8 and 10 (scored on held-out noise).
Writes results.json, results.md and error_<target>.png into --out (docs/samplers.md holds a run).
"""

from __future__ import annotations

from pathlib import Path

from experiments import cli
from experiments.configs import sampler_error as configs


def run(config: configs.Config, workdir: str | Path, *, quiet: bool = False) -> dict:
    """Run the benchmark of ``config``; writes ``workdir/results.json``, ``results.md`` and the plots."""
    from experiments import _sampler_error  # JAX from here on

    return _sampler_error.run(config, Path(workdir), quiet=quiet)


def main(argv: list[str] | None = None) -> dict:
    return cli.output_main(configs, argv, doc=__doc__, script="sampler_error.py",
                           run=lambda config, opts: run(config, opts.out, quiet=opts.quiet), show=_show)  # fmt: skip


def _show(results: dict, quiet: bool) -> None:
    if not quiet:
        from experiments import _sampler_error_report

        print(_sampler_error_report.markdown(results))


if __name__ == "__main__":
    main()
