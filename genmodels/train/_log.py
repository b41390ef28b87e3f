"""The metrics log of ``fit``: per-step losses read back from the device become ``metrics.jsonl`` rows.

Each compiled call returns the losses and metrics of its ``n`` steps; :meth:`MetricsLog.process` reads them
one call later (so the device never waits on logging), averages them over windows of ``Logging.every``
steps into rows ``{"step", "loss", <metrics>, "steps_per_sec", "time"}`` and stops with a
:class:`~genmodels.errors.NonFiniteLossError` at the first step whose loss or gradient was not finite.

Progress (``Logging(progress=True)``, process 0 only) goes to stderr: a tqdm bar on a terminal or in
Jupyter, and in a non-interactive log (stderr not a terminal: a file, a pipe, CI) one plain line at most
every 30 s and at the end, ``step 300/3000 (10%) loss 0.1234 45.1 steps/s``, instead of tqdm's carriage returns. The
environment variable ``GENMODELS_PROGRESS=bar`` / ``lines`` / ``off`` overrides the choice.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from genmodels.errors import NonFiniteLossError
from genmodels.train._checkpoint import host_array
from genmodels.train._policies import Logging
from genmodels.train._run_directory import RunDirectory

PROGRESS_ENV = "GENMODELS_PROGRESS"
LINE_SECONDS = 30.0


def progress_style(progress: bool) -> str:
    """``"bar"``, ``"lines"`` or ``"off"``: ``$GENMODELS_PROGRESS`` if set, else a bar on a terminal or in
    Jupyter and plain lines elsewhere (``"off"`` without ``progress`` or off process 0)."""
    if not progress or jax.process_index() != 0:
        return "off"
    style = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if style in ("bar", "lines", "off"):
        return style
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules  # a terminal or a Jupyter widget
    return "bar" if interactive else "lines"


class _Lines:
    """The plain-line stand-in of a tqdm bar: ``update``, ``set_postfix`` and ``close`` print at most one
    line every ``LINE_SECONDS`` (and one at the end) to stderr."""

    def __init__(self, total: int, initial: int):
        self.total, self.n, self.postfix, self.last = total, initial, "", time.perf_counter()
        self.t0, self.n0, self.closed = self.last, initial, False

    def _print(self) -> None:
        rate = (self.n - self.n0) / max(time.perf_counter() - self.t0, 1e-9)
        pct = 100 * self.n / max(self.total, 1)
        print(f"step {self.n}/{self.total} ({pct:.0f}%){self.postfix} {rate:.3g} steps/s", file=sys.stderr,
              flush=True)  # fmt: skip
        self.last = time.perf_counter()

    def update(self, n: int) -> None:
        self.n += n
        if time.perf_counter() - self.last >= LINE_SECONDS and self.n < self.total:
            self._print()

    def set_postfix(self, loss: str, refresh: bool = False) -> None:
        self.postfix = f" loss {loss}"

    def close(self) -> None:
        if not self.closed and self.n > self.n0:
            self._print()
        self.closed = True


class MetricsLog:
    """Rows of one run: kept in ``history`` and appended to the run directory's ``metrics.jsonl``."""

    def __init__(self, policy: Logging, *, steps: int, start: int, history: list[dict], run: RunDirectory | None,
                 t_start: float, where: Callable[[], str]):  # fmt: skip
        self.policy, self.steps, self.history, self.run = policy, steps, history, run
        self.t_start, self.where = t_start, where
        style = progress_style(policy.progress)
        if style == "lines":
            self.bar = _Lines(steps, min(start, steps))
        else:
            self.bar = tqdm(total=steps, initial=min(start, steps), unit="step", disable=style == "off",
                            dynamic_ncols=True)  # fmt: skip
        self.window: list[tuple[float, dict]] = []
        self.t_window = time.perf_counter()
        self.first: tuple[float, int] | None = None  # (time, step) after the first (compiling) call

    def emit(self, row: dict) -> None:
        self.history.append(row)
        if self.run is not None:
            self.run.log(row)

    def process(self, s0: int, n: int, out: dict) -> None:
        """The rows of the call that ran steps ``s0 .. s0 + n - 1``; raises at a non-finite step."""
        host = jax.tree.map(host_array, out)
        bad = int(host["bad_step"])
        for j in range(n):
            s = s0 + j
            loss = float(host["loss"][j])
            if 0 <= bad <= s:
                self.emit({"step": s, "event": "non-finite", "loss": loss})
                self.close()
                raise NonFiniteLossError(f"loss or gradient is not finite at step {s} (loss = {loss}); training "
                                         f"stopped before applying that update. Nothing was written after step "
                                         f"{s}{self.where()}.", step=s)  # fmt: skip
            self.window.append((loss, {k: float(v[j]) for k, v in host["metrics"].items()}))
            if (s + 1) % self.policy.every == 0 or s + 1 == self.steps:
                self._row(s + 1)
        self.bar.update(n)
        if self.first is None:
            self.first = (time.perf_counter(), s0 + n)

    def _row(self, step: int) -> None:
        now = time.perf_counter()
        row = {"step": step, "loss": float(np.mean([w[0] for w in self.window]))}
        for name in self.window[0][1]:
            row[name] = float(np.mean([w[1][name] for w in self.window]))
        row["steps_per_sec"] = len(self.window) / max(now - self.t_window, 1e-9)
        row["time"] = now - self.t_start
        self.emit(row)
        self.bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
        self.window.clear()
        self.t_window = now

    def steps_per_sec(self, step: int, t_end: float) -> float | None:
        """Throughput after the first (compiling) call, or None if there was only one call."""
        if self.first is None or step <= self.first[1]:
            return None
        return (step - self.first[1]) / max(t_end - self.first[0], 1e-9)

    def close(self) -> None:
        self.bar.close()
