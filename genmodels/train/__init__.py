"""Training: ``fit`` (a short loop over one compiled, donated train step) and its pieces, each a value.

* :class:`RunDirectory` -- the one owner of a run directory: what may be overwritten, ``config.json``
  (compared on resume), ``metrics.jsonl``, ``checkpoints/``, an atomic ``results.json``, and the lock that
  keeps a second job out;
* policies -- :class:`EMA`, :class:`Checkpoints`, :class:`Validation` (early stopping), :class:`Logging`,
  :class:`Execution` (steps per call, data-parallel mesh, compute dtype);
* the optimiser -- :func:`adamw` with any optax schedule, e.g. :func:`warmup_cosine` or
  :func:`warmup_constant`;
* the compiled step (:func:`make_train_call`), checkpoints (:class:`Checkpointer`), multi-host setup
  (:func:`init_distributed`, :func:`data_mesh`) and :func:`params_digest`.

A loss is ``loss_fn(model, batch, key) -> (loss, metrics)``; :func:`scalar_loss` adapts one that returns only
the loss.
"""

from genmodels.errors import CheckpointError as CheckpointError
from genmodels.errors import NonFiniteLossError as NonFiniteLossError
from genmodels.train._checkpoint import Checkpointer as Checkpointer
from genmodels.train._distributed import data_mesh as data_mesh
from genmodels.train._distributed import init_distributed as init_distributed
from genmodels.train._ema import EMA as EMA
from genmodels.train._ema import ema_decay_at as ema_decay_at
from genmodels.train._ema import ema_update as ema_update
from genmodels.train._files import atomic_write as atomic_write
from genmodels.train._files import write_json as write_json
from genmodels.train._fit import FitResult as FitResult
from genmodels.train._fit import fit as fit
from genmodels.train._fit import params_digest as params_digest
from genmodels.train._lock import JOB_ID_ENV as JOB_ID_ENV
from genmodels.train._lock import LOCK_NAME as LOCK_NAME
from genmodels.train._optim import adamw as adamw
from genmodels.train._optim import warmup_constant as warmup_constant
from genmodels.train._optim import warmup_cosine as warmup_cosine
from genmodels.train._policies import (
    Checkpoints as Checkpoints,
)
from genmodels.train._policies import (
    Execution as Execution,
)
from genmodels.train._policies import (
    Logging as Logging,
)
from genmodels.train._policies import (
    Validation as Validation,
)
from genmodels.train._policies import (
    ValidationRecord as ValidationRecord,
)
from genmodels.train._run_directory import RUN_MARKERS as RUN_MARKERS
from genmodels.train._run_directory import RunDirectory as RunDirectory
from genmodels.train._step import (
    ScalarLoss as ScalarLoss,
)
from genmodels.train._step import (
    TrainState as TrainState,
)
from genmodels.train._step import (
    make_train_call as make_train_call,
)
from genmodels.train._step import (
    scalar_loss as scalar_loss,
)
