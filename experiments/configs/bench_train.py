"""The recipe of ``experiments/bench_train.py``: the grid of the training-throughput benchmark
(docs/train_benchmarks.md). ``--quick``: steps_per_call 1 and 10, two XLA flag sets, 2 bursts of 1 s."""

from __future__ import annotations

import dataclasses

from experiments.cli import OutputOptions, param, validate

FLAG_SETS = {
    "default": "",
    "onednn": "--xla_cpu_use_onednn=true",
    "xnn-dot": "--xla_cpu_experimental_xnn_fusion_type=+dot",
    "eigen-1thread": "--xla_cpu_multi_thread_eigen=false",
}
PEERS = ("torchcfm", "flow_matching")


@dataclasses.dataclass(frozen=True)
class Config:
    quick: bool = param(False, "a smaller grid (spc 1 and 10, flag sets default and xnn-dot, 2 bursts of 1 s)",
                        select=True)  # fmt: skip
    batch_sizes: tuple[int, ...] = param((256, 4096), "batch sizes (one worker process each per flag set)", ge=1)
    spc: tuple[int, ...] = param((1, 10, 50), "steps_per_call values of gm.train's compiled step", ge=1)
    flag_sets: tuple[str, ...] = param(tuple(FLAG_SETS), "XLA CPU flag sets", choices=tuple(FLAG_SETS), noun="flag set")
    peers: tuple[str, ...] = param(PEERS, "torch peers (none: JAX only)", choices=PEERS, noun="peer")
    torch_threads: tuple[int, ...] = param((1, 2), "torch intra-op threads of the peers", ge=1)
    seconds: float = param(1.5, "seconds per burst", gt=0)
    reps: int = param(5, "bursts per configuration (alternating)", ge=1)

    def __post_init__(self):
        validate(self)


QUICK = dict(spc=(1, 10), reps=2, seconds=1.0, flag_sets=("default", "xnn-dot"))


NAMES: tuple[str, ...] = ()  # no named recipes: the selectors choose


def get_config(name: str | None = None, *, quick: bool = False) -> Config:
    return Config(quick=quick, **(QUICK if quick else {}))


Options = OutputOptions  # --out, --resume, --overwrite, --quiet
