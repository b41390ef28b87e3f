"""The exceptions genmodels raises, in one hierarchy users can catch.

Every error the library raises on purpose derives from :class:`GenmodelsError`, and also from the built-in
exception a Python user expects, so ``except ValueError`` keeps working::

    GenmodelsError
    ├── ArgumentError(GenmodelsError, ValueError)      a value of an argument is wrong (message names it)
    │   └── ScheduleError                              a noise schedule is not a descending sigma grid
    ├── ArgumentTypeError(GenmodelsError, TypeError)   an argument has the wrong type or dtype
    │   └── ProtocolError                              a model lacks the protocol the caller needs
    ├── RunDirectoryError(GenmodelsError, ValueError)  a run directory cannot be used as asked
    │   ├── RunDirectoryLockedError                    another job holds the run directory
    │   └── RunExistsError(..., FileExistsError)       it holds a run that was not to be resumed / overwritten
    ├── CheckpointError(GenmodelsError, ValueError)    a checkpoint is missing, corrupt or does not fit
    ├── RuntimeCheckError(GenmodelsError, RuntimeError) a check inside a compiled program failed
    └── NonFiniteError(GenmodelsError, FloatingPointError)
        ├── NonFiniteLossError                         training: the loss or gradient became NaN / inf
        └── NonFiniteSampleError                       sampling: a step produced NaN / inf

Errors found *inside* a compiled program (values known only at run time: a traced schedule that ascends,
labels out of range) come from ``eqx.error_if``. The public entry points (``gm.sample`` / ``gm.solve``,
``gm.log_prob``, ``gm.train.fit``) re-raise them as :class:`RuntimeCheckError` (an ``equinox.EquinoxRuntimeError``, so a ``RuntimeError``) whose
message leads with what went wrong; equinox's own error, with the stack inside the program, is chained as
its ``__cause__``. Where the library can inspect the result after the program (the sampler driver's NaN
check), it raises a :class:`NonFiniteSampleError` that names the first bad step and its noise level.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

import equinox as eqx

_F = TypeVar("_F", bound=Callable)
_EQX_ERRORS = (eqx.EquinoxRuntimeError, eqx.EquinoxTracetimeError)
_EQX_MESSAGE = re.compile(r"equinox\.Equinox\w*Error: (.*?)(?:\n\n-{5,}|\Z)", re.S)


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


class RunExistsError(RunDirectoryError, FileExistsError):
    """The run directory already holds a run (finished, or unfinished without ``resume``); nothing was changed."""


class CheckpointError(GenmodelsError, ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model being restored."""


class RuntimeCheckError(GenmodelsError, eqx.EquinoxRuntimeError):
    """A check that runs inside a compiled program failed (e.g. a traced schedule that is not descending).

    Also an ``equinox.EquinoxRuntimeError`` (a ``RuntimeError``), so code catching that keeps working."""


def check_message(err: BaseException) -> str:
    """The message a failed ``eqx.error_if`` was given, without equinox's preamble."""
    text = str(err)
    match = _EQX_MESSAGE.search(text)
    return (match.group(1) if match else text).strip()


def reraise_runtime_checks(fn: _F) -> _F:
    """Decorator for public entry points: a failed in-program check surfaces as a
    :class:`RuntimeCheckError` whose message is the check's own, chained to equinox's error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _EQX_ERRORS as err:
            raise RuntimeCheckError(
                check_message(err) + "\n(raised by a check inside the compiled program; equinox's report with "
                "the stack inside it is the cause above)"
            ) from err

    return wrapper  # type: ignore[return-value]


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
