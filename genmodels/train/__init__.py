"""Training: ``fit`` (one compiled, donated train step looping over several steps; EMA; orbax checkpoints with exact resume;
early stopping; data parallelism over a mesh axis ``"data"``), ``adamw`` and ``params_digest``."""

from genmodels.train._checkpoint import CheckpointError as CheckpointError, Checkpointer as Checkpointer
from genmodels.train._distributed import data_mesh as data_mesh, init_distributed as init_distributed
from genmodels.train._fit import (
    FitResult as FitResult,
    NonFiniteLossError as NonFiniteLossError,
    fit as fit,
    params_digest as params_digest,
)
from genmodels.train._optim import adamw as adamw, ema_decay_at as ema_decay_at, ema_update as ema_update, lr_schedule as lr_schedule
from genmodels.train._step import TrainState as TrainState, make_train_call as make_train_call
