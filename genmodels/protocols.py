"""What a model can do, as nominal protocols: abstract classes checked with ``isinstance``, never probed.

A sampler, a loss or the likelihood asks for the protocol it needs and fails at trace time with a
:class:`genmodels.errors.ProtocolError` otherwise. The protocols are plain ``abc.ABC`` classes, so they mix
with both module systems of the library (``eqx.Module``, whose metaclass derives from ``ABCMeta``, and
``flax.nnx.Module``, likewise): a class states what it can do by inheriting, e.g. ::

    class EDMModel(nnx.Module, AbstractDenoiserModel, HasScore): ...

**Two module systems, one boundary.** Math objects that hold no trainable state (paths, schedules'
samplers, analytic targets, adapters, wrappers such as guidance) are ``eqx.Module`` pytrees whose numbers
are traced leaves. Trainable models and networks are ``flax.nnx.Module`` objects (mutable, with
``nnx.Param`` state that ``gm.train`` optimises). Both are pytrees, so both pass through ``eqx.filter_jit``
and ``gm.sample``; both declare their capabilities with the classes below.

**Capabilities are markers; wrappers forward them.** A capability that only some models of a kind have
(the limit at sigma = infinity, a score, an incremental cache, a learned loss weighting) is its own
abstract marker class. A wrapper (conditioning on labels, classifier-free guidance, preconditioning)
has the capability exactly when what it wraps has it: its class is chosen at construction from the
wrapped model's markers (:func:`forwarding_class`), so ``isinstance`` answers truthfully through any
stack of wrappers.

Denoiser models (EDM coordinates x = x0 + sigma eps; sigma a scalar or one value per batch row):

* :class:`AbstractDenoiserModel` -- ``denoise(x, sigma, labels=None) = E[x0 | x]``.
* :class:`HasLimitAtInfinity` -- ``at_infinity(eps, labels=None) = lim_{sigma->inf} D(sigma eps, sigma)``.
* :class:`HasScore` -- ``score(x, sigma, labels=None) = grad_x log p_sigma(x)`` computed natively.
* :class:`HasEvaluationCount` -- ``evaluations(sigma)``: network evaluations per ``denoise`` call (guidance).
* :class:`HasExactSamples` -- ``sample(key, n)``: exact samples (analytic targets).
* :class:`HasLearnedWeighting` -- ``log_variance(sigma)``: EDM2's learned uncertainty u(sigma); the loss
  becomes ``exp(-u) L + u`` (Karras et al. 2024, Eq. 21).
* :class:`AbstractPathModel` -- a network predicting in a path's own coordinates (x_t, t) through a
  parameterization value (``gm.denoisers.Eps()``, ``V()``, ``Velocity()`` ...): ``predict(x_t, t, labels)``.
* :class:`AbstractFlowMapModel` -- ``flow_map(x, sigma, sigma_next, labels=None)``: the state at
  ``sigma`` carried to ``sigma_next`` along the probability-flow ODE (few-step generation).

Networks:

* :class:`TakesSecondTime` -- a network ``net(x, c, c2, labels=None)`` conditioned on two times (flow maps).

Autoregressive models over binary vectors (flat ``(batch, n)`` arrays in the data layout):

* :class:`AbstractAutoregressiveModel` -- ``event_shape``, ``ordering`` and ``conditionals(x)``: the
  teacher-forced logits of every position in one pass, ``l[:, d] = logit p(x_d = 1 | x before d)``.
* :class:`Incremental` -- ``init_cache(batch, dtype)`` and ``step(cache, i, x) -> (logit, cache)``: one
  position per call, O(one position) of work.
* :class:`BlockScoring` -- ``score_block(cache, i, x, k) -> (logits, cache)``: the logits of positions
  ``i .. i + k`` of the ordering against the cache in one call (the verifier of speculative decoding).
"""

from __future__ import annotations

import abc
from typing import Any

from jaxtyping import Array, Float, Int

from genmodels.errors import ProtocolError

__all__ = [
    "AbstractAutoregressiveModel",
    "AbstractDenoiserModel",
    "AbstractFlowMapModel",
    "AbstractPathModel",
    "BlockScoring",
    "HasEvaluationCount",
    "HasExactSamples",
    "HasLearnedWeighting",
    "HasLimitAtInfinity",
    "HasScore",
    "Incremental",
    "TakesSecondTime",
    "CAPABILITIES",
    "forwarding_class",
    "require",
]


# ---- denoiser models ----------------------------------------------------------------------------------


class AbstractDenoiserModel(abc.ABC):
    """A model the continuous samplers can drive: the denoiser D(x, sigma) = E[x0 | x0 + sigma eps]."""

    @abc.abstractmethod
    def denoise(
        self, x: Float[Array, batch * dims], sigma: Any, labels: Int[Array, " batch"] | None = None
    ) -> Float[Array, batch * dims]:
        """E[x0 | x] at noise level ``sigma`` (a scalar or shape (batch,)); same shape as ``x``."""


class HasLimitAtInfinity(abc.ABC):
    """Capability: the denoiser has a limit at sigma = inf, so sampling can start from pure noise."""

    @abc.abstractmethod
    def at_infinity(
        self, eps: Float[Array, batch * dims], labels: Int[Array, " batch"] | None = None
    ) -> Float[Array, batch * dims]:
        """lim_{sigma -> inf} D(sigma eps, sigma) for standard-normal ``eps``."""


class HasEvaluationCount(abc.ABC):
    """Capability: one ``denoise`` call costs a known number of network evaluations, which may depend on the
    noise level (classifier-free guidance costs two, or one outside its guidance interval). The samplers count
    ``Solution.nfe`` in network evaluations with it; a model without it costs one per call. Guidance wrappers
    implement it; it is not forwarded by other wrappers (wrap the guided model last)."""

    @abc.abstractmethod
    def evaluations(self, sigma: Float[Array, ""]) -> Int[Array, ""]:
        """Network evaluations (int32 scalar) made by one ``denoise`` call at the scalar noise level ``sigma``."""


class HasScore(abc.ABC):
    """Capability: the model computes its score natively (otherwise Tweedie, (D - x) / sigma^2, is used)."""

    @abc.abstractmethod
    def score(
        self, x: Float[Array, batch * dims], sigma: Any, labels: Int[Array, " batch"] | None = None
    ) -> Float[Array, batch * dims]:
        """grad_x log p_sigma(x)."""


class HasLearnedWeighting(abc.ABC):
    """Capability: a learned per-noise-level loss weighting (EDM2's log-variance head u(sigma))."""

    @abc.abstractmethod
    def log_variance(self, sigma: Float[Array, " batch"]) -> Float[Array, " batch"]:
        """u(sigma); a loss that supports it minimises exp(-u) L + u per row."""


class HasExactSamples(abc.ABC):
    """Capability of an analytic target: exact samples ``sample(key, n)`` (the ``gm.targets`` mixtures)."""

    @abc.abstractmethod
    def sample(self, key: Any, n: int) -> Float[Array, n * dims]:
        """``n`` exact samples."""


class AbstractPathModel(AbstractDenoiserModel):
    """A denoiser model whose network predicts in a path's own coordinates x_t = a(t) x0 + b(t) eps.

    ``path`` is a ``gm.paths`` path and ``parameterization`` a ``gm.denoisers`` parameterization value
    (what the network predicts, its regression target and its conversion to a denoiser).
    """

    path: Any
    parameterization: Any

    @abc.abstractmethod
    def predict(
        self, x_t: Float[Array, batch * dims], t: Any, labels: Int[Array, " batch"] | None = None
    ) -> Float[Array, batch * dims]:
        """The network's own prediction at (x_t, t)."""


class AbstractFlowMapModel(abc.ABC):
    """A model of the flow map: the probability-flow state at ``sigma`` carried to ``sigma_next``."""

    @abc.abstractmethod
    def flow_map(
        self,
        x: Float[Array, batch * dims],
        sigma: Any,
        sigma_next: Any,
        labels: Int[Array, " batch"] | None = None,
    ) -> Float[Array, batch * dims]:
        """Phi(x; sigma -> sigma_next); Phi(x; sigma -> 0) is the one-step sample."""


class TakesSecondTime(abc.ABC):  # noqa: B024 - a marker: the call signature is the capability
    """Capability of a network: a second time condition, ``net(x, c, c2, labels=None)`` (flow maps)."""


# ---- autoregressive models ----------------------------------------------------------------------------


class AbstractAutoregressiveModel(abc.ABC):
    """A model over binary vectors that factorises along an ordering (``ordering[i]`` is generated i-th)."""

    event_shape: tuple[int, ...]
    """The shape of one example (the data layout), e.g. ``(n,)`` or ``(height, width)``."""
    ordering: Int[Array, " n"]
    """A permutation of range(n_dims): the dimension generated at each step (an attribute or property)."""

    @property
    @abc.abstractmethod
    def n_dims(self) -> int:
        """Number of binary dimensions, prod(event_shape)."""

    @abc.abstractmethod
    def conditionals(self, x: Float[Array, "batch n"]) -> Float[Array, "batch n"]:
        """Teacher-forced logits of all positions in one pass, flat data layout: ``l[:, d]`` is the logit of
        x_d = 1 given the dimensions before d in the ordering."""


class Incremental(abc.ABC):
    """Capability: sampling one position at a time against a cache (running activation, KV cache)."""

    @abc.abstractmethod
    def init_cache(self, batch: int, dtype: Any) -> Any:
        """The cache before step 0."""

    @abc.abstractmethod
    def step(self, cache: Any, i: Int[Array, ""], x: Float[Array, "batch n"]) -> tuple[Float[Array, " batch"], Any]:
        """Logit of dimension ``ordering[i]`` given ``x`` (flat; its dimensions ``ordering[:i]`` hold their
        values); folds ``x[:, ordering[i - 1]]`` into the cache."""


class BlockScoring(abc.ABC):
    """Capability: score k + 1 positions against the cache at once (speculative decoding's verifier)."""

    @abc.abstractmethod
    def score_block(
        self, cache: Any, i: Int[Array, ""], x: Float[Array, "batch n"], k: int
    ) -> tuple[Float[Array, "batch k1"], Any]:
        """Logits of positions ``ordering[i : i + k + 1]`` given ``x``, and the cache advanced past them."""


# ---- checks and forwarding ----------------------------------------------------------------------------


def require(name: str, model: Any, protocol: type, needed_by: str, hint: str = "") -> Any:
    """Return ``model`` if it implements ``protocol``; else raise a ProtocolError naming both."""
    if isinstance(model, protocol):
        return model
    raise ProtocolError(
        f"{needed_by} needs {name} to be a {protocol.__name__} (gm.protocols), got {type(model).__name__}."
        + (f" {hint}" if hint else "")
    )


CAPABILITIES: tuple[type, ...] = (
    HasLimitAtInfinity,
    HasScore,
    HasLearnedWeighting,
    TakesSecondTime,
    Incremental,
    BlockScoring,
)
"""The capability markers a wrapper may forward."""


def forwarding_class(base: type, wrapped: Any, variants: tuple[type, ...]) -> type:
    """The class a wrapper of ``wrapped`` takes: among ``base`` and its ``variants`` (subclasses that forward
    capability markers), the one forwarding the most markers, all of which ``wrapped`` has.

    Used in ``__new__`` of wrappers (conditioning, guidance, preconditioning), so ``isinstance`` answers
    truthfully through any stack of them: a wrapper has a capability exactly when what it wraps has it.
    """
    best, best_count = base, 0
    for variant in variants:
        caps = [m for m in CAPABILITIES if issubclass(variant, m) and not issubclass(base, m)]
        if all(isinstance(wrapped, m) for m in caps) and len(caps) > best_count:
            best, best_count = variant, len(caps)
    return best
