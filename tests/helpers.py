"""Helpers shared by the test files: a call-counting probe model, float64 mode, sampler discovery.

``Probe(model)`` wraps a denoiser model (a ``gm.protocols.AbstractDenoiserModel`` or a plain callable
``D(x, sigma)``) and counts, in the module-level :data:`COUNTER`,

* ``traces``: how often the model was traced (a Python side effect runs only while JAX traces), so a
  test can assert that new numbers reuse the compiled program;
* ``calls``: how often it really ran (a ``jax.debug.callback`` per call), so a test can compare a
  sampler's ``nfe`` with the real number of model evaluations.

The probe is a limit-at-infinity model exactly when the wrapped model is (``gm.protocols.forwarding_class``,
as the library's wrappers do), and its ``at_infinity`` calls are counted too. ``Probe(model, nan_below=s)``
also injects a fault: its output is NaN at every sigma < s (a traced leaf: the same compiled program as
the healthy probe, whose default is -inf).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

import genmodels as gm
from genmodels.denoisers import as_denoiser
from genmodels.protocols import AbstractDenoiserModel, HasLimitAtInfinity, forwarding_class


class CallCounter:
    """Counts traces and real calls of the probes (see the module docstring)."""

    def __init__(self):
        self.traces = 0
        self.calls = 0

    def tick(self, *_) -> None:
        """Host callback: one real call (arguments, if any, are ignored)."""
        self.calls += 1

    def trace_and_tick(self) -> None:
        """Record one traced call; at run time, one real call."""
        self.traces += 1
        jax.debug.callback(self.tick)

    def count(self, fn: Callable[[], Any]) -> tuple[Any, int]:
        """Run ``fn()`` to completion and return (its result, the real calls it made)."""
        self.calls = 0
        out = jax.block_until_ready(fn())
        jax.effects_barrier()
        return out, self.calls


COUNTER = CallCounter()


class Probe(eqx.Module, AbstractDenoiserModel):
    """``model`` with every call counted in :data:`COUNTER`."""

    model: Any
    nan_below: Array

    def __new__(cls, model=None, *args, **kwargs):
        if cls is Probe:
            cls = forwarding_class(Probe, model, (_ProbeWithLimit,))
        return super().__new__(cls)

    def __init__(self, model: Any, nan_below: float = -np.inf):
        self.model = model
        self.nan_below = jnp.asarray(nan_below, jnp.float32)

    def denoise(self, x, sigma, labels=None):
        COUNTER.trace_and_tick()
        out = as_denoiser(self.model).denoise(x, sigma, labels)
        bad = jnp.asarray(sigma) < self.nan_below
        return jnp.where(bad.reshape(bad.shape + (1,) * (out.ndim - bad.ndim)), jnp.nan, out)

    def __call__(self, x, sigma):
        return self.denoise(x, sigma)


class _ProbeWithLimit(Probe, HasLimitAtInfinity):
    def at_infinity(self, eps, labels=None):
        COUNTER.trace_and_tick()
        return self.model.at_infinity(eps, labels)


@contextlib.contextmanager
def x64_mode() -> Iterator[None]:
    """Run the block with ``jax_enable_x64`` on (restored afterwards)."""
    old = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)


def exported_samplers(base: type) -> list[type]:
    """Every concrete subclass of ``base`` exported by ``gm.samplers``, sorted by name: the tests that
    take this list cover a new sampler with no edit."""
    found = {
        c
        for c in vars(gm.samplers).values()
        if isinstance(c, type) and issubclass(c, base) and not inspect.isabstract(c)
    }
    return sorted(found, key=lambda c: c.__name__)


def build_step_sampler(cls: type, sigmas, **kwargs):
    """A fixed-step sampler of class ``cls`` on ``sigmas``, with its defaults except where a default does
    not fit a short test schedule (annealed Langevin: NCSN's step-size ratio, 10 updates per level)."""
    if cls is gm.samplers.AnnealedLangevin:
        sig = np.asarray(sigmas)
        kwargs.setdefault("step_size", 0.2 * float(sig[sig > 0].min()) ** 2)
        kwargs.setdefault("steps_per_level", 10)
    return cls(sigmas, **kwargs)
