"""The exceptions genmodels raises, in one hierarchy users can catch.

Every error the library raises on purpose derives from :class:`GenmodelsError`, and also from the built-in
exception a Python user expects, so ``except ValueError`` keeps working::

    GenmodelsError
    ├── ArgumentError(GenmodelsError, ValueError)      a value of an argument is wrong (message names it)
    │   └── ScheduleError                              a noise schedule is not a descending sigma grid
    ├── ArgumentTypeError(GenmodelsError, TypeError)   an argument has the wrong type or dtype
    │   └── ProtocolError                              a model lacks the protocol the caller needs
    ├── RunDirectoryError(GenmodelsError, ValueError)  a run directory cannot be used as asked
    │   └── RunDirectoryLockedError                    another job holds the run directory
    ├── CheckpointError(GenmodelsError, ValueError)    a checkpoint is missing, corrupt or does not fit
    └── NonFiniteError(GenmodelsError, FloatingPointError)
        ├── NonFiniteLossError                         training: the loss or gradient became NaN / inf
        └── NonFiniteSampleError                       sampling: a step produced NaN / inf

Errors found *inside* a compiled program (values known only at run time: a traced schedule that ascends, a
model that returns NaN) are raised by equinox as ``equinox.EquinoxRuntimeError``
(:data:`RuntimeCheckError`), whose message leads with what went wrong. Where the library can inspect the
result after the program (the sampler driver's NaN check), it raises a :class:`NonFiniteSampleError` that
names the first bad step and its noise level instead.
"""

from __future__ import annotations

import equinox as eqx

RuntimeCheckError = eqx.EquinoxRuntimeError
"""The type of the errors raised by checks that run inside a compiled program (``eqx.error_if``)."""


class GenmodelsError(Exception):
    """Base class of every error genmodels raises on purpose."""


class ArgumentError(GenmodelsError, ValueError):
    """An argument has a wrong value; the message names the argument and what was expected."""


class ScheduleError(ArgumentError):
    """A noise schedule is not a 1-D, strictly descending array of non-negative sigmas."""


class ArgumentTypeError(GenmodelsError, TypeError):
    """An argument has the wrong type, dtype or structure; the message names the argument."""


class ProtocolError(ArgumentTypeError):
    """A model does not implement the protocol (``gm.models.protocols``) that a sampler or loss needs."""


class RunDirectoryError(GenmodelsError, ValueError):
    """A run directory cannot be used as asked (foreign files, a finished run, a config that differs)."""


class RunDirectoryLockedError(RunDirectoryError):
    """Another live job holds the run directory's lock; the message names the holder and how to break it."""


class CheckpointError(GenmodelsError, ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model being restored."""


class NonFiniteError(GenmodelsError, FloatingPointError):
    """A computation produced NaN or inf."""


class NonFiniteLossError(NonFiniteError):
    """The training loss or gradient became NaN / inf at ``step``; the last checkpoint is kept."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


class NonFiniteSampleError(NonFiniteError):
    """A sampler step produced NaN / inf: ``step`` is its index and ``sigma`` the noise level it started from."""

    def __init__(self, message: str, step: int, sigma: float | None = None):
        super().__init__(message)
        self.step = step
        self.sigma = sigma
