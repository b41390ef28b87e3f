"""A class-conditional Gaussian mixture, and a 2-D one whose classes branch like trees (for guidance).

The joint p(y, x0) = sum_{k in class y} w_k N(x0; mu_k, Sigma_k) (weights summing to 1 over all classes)
gives exact conditional and unconditional marginals at every noise level: restricting the responsibilities
of :class:`~genmodels.targets.FullGaussianMixture` to the components of class y turns its denoiser into
D(x, sigma | y) and its density into p_sigma(x | y) = p_sigma(x, y) / p(y); the unconditional ones use all
components, D(x, sigma) = sum_y p(y | x) D(x, sigma | y).

:func:`branching_tree` builds the 2-D example of the autoguidance paper (Karras et al. 2024, EDM2's
``toy_example.py``): each class a binary tree of thin, elongated full-covariance components, with thinner and
lighter branches as they split, so that most of the mass is near the roots and the tips are thin and faint.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from genmodels.errors import ArgumentError, ArgumentTypeError
from genmodels.protocols import AbstractDenoiserModel, HasExactSamples, HasLimitAtInfinity, HasScore
from genmodels.targets._full_mixture import FullGaussianMixture, full_mixture


class ClassMixture(eqx.Module, AbstractDenoiserModel, HasScore, HasLimitAtInfinity, HasExactSamples):
    """A class-conditional mixture: component k belongs to class ``classes[k]``.

    Args:
        mixture: the joint mixture (its weights are p(y, k); classes' priors p(y) are their sums).
        classes: (K,) integer class of each component, in range(num_classes).
        num_classes: the number of classes (static); every class needs a component.

    ``denoise(x, sigma, labels)`` is D(x, sigma | labels) with labels of shape x.shape[:-1] (one class per
    row), and the unconditional D(x, sigma) with ``labels=None``; likewise ``score``, ``log_prob`` and
    ``at_infinity``. So ``gm.guidance.ClassifierFree(tree, labels, scale)``, ``gm.guidance.Autoguidance``
    and ``gm.models.with_labels`` take it as the model, and ``gm.sample(tree, ...)`` samples the
    unconditional mixture. Labels outside range(num_classes) are an ArgumentError (a runtime error under jit).
    """

    mixture: FullGaussianMixture
    classes: Int[Array, " K"]
    num_classes: int = eqx.field(static=True)

    def __init__(self, mixture: FullGaussianMixture, classes: ArrayLike, num_classes: int | None = None):
        if not isinstance(mixture, FullGaussianMixture):
            raise ArgumentTypeError(f"mixture must be a gm.targets.FullGaussianMixture, got {type(mixture).__name__}.")
        classes = np.asarray(classes)
        k = mixture.means.shape[0]
        if classes.shape != (k,) or classes.dtype.kind not in "iu":
            raise ArgumentError(
                f"classes must be an integer array of shape ({k},), got {classes.dtype}{classes.shape}."
            )
        num_classes = int(classes.max()) + 1 if num_classes is None else int(num_classes)
        if classes.min() < 0 or classes.max() >= num_classes or len(np.unique(classes)) != num_classes:
            raise ArgumentError(f"classes must use every class of range(num_classes) = range({num_classes}).")
        self.mixture = mixture
        self.classes = jnp.asarray(classes, dtype=jnp.int32)
        self.num_classes = num_classes

    @property
    def dim(self) -> int:
        return self.mixture.dim

    @property
    def class_priors(self) -> Float[Array, " num_classes"]:
        """p(y) = sum of the weights of class y's components."""
        return jax.ops.segment_sum(self.mixture.weights, self.classes, self.num_classes)

    @property
    def class_means(self) -> Float[Array, "num_classes dim"]:
        """E[x0 | y]."""
        w = self.mixture.weights[:, None] * self.mixture.means
        return jax.ops.segment_sum(w, self.classes, self.num_classes) / self.class_priors[:, None]

    @property
    def mean(self) -> Float[Array, " dim"]:
        return self.mixture.mean

    def for_class(self, label: int) -> FullGaussianMixture:
        """The mixture of class ``label`` alone, p(x0 | y = label) (a concrete int)."""
        label = self._check_label_int(label)
        keep = np.flatnonzero(np.asarray(self.classes) == label)
        m = self.mixture
        return FullGaussianMixture(m.weights[keep], m.means[keep], m.eigvecs[keep], m.eigvals[keep], m.floor[keep])

    def widen(self, factor: ArrayLike) -> ClassMixture:
        """Every component's standard deviations scaled by ``factor`` (an imperfect but exact model)."""
        return eqx.tree_at(lambda t: t.mixture, self, self.mixture.widen(factor))

    # ---- labels ------------------------------------------------------------------------------------------

    def _check_label_int(self, label) -> int:
        if isinstance(label, bool) or not isinstance(label, int | np.integer):
            raise ArgumentTypeError(f"label must be an int, got {type(label).__name__}.")
        if not 0 <= label < self.num_classes:
            raise ArgumentError(f"label must be in range({self.num_classes}), got {label}.")
        return int(label)

    def _labels(self, labels, batch_shape: tuple) -> Array:
        labels = jnp.asarray(labels)
        if not jnp.issubdtype(labels.dtype, jnp.integer):
            raise ArgumentTypeError(f"labels must be an integer array, got dtype {labels.dtype}.")
        if labels.shape != batch_shape:
            raise ArgumentError(f"labels must have shape {batch_shape} (one class per row of x), got {labels.shape}.")
        bad = (labels < 0) | (labels >= self.num_classes)
        if isinstance(labels, jax.core.Tracer):
            return eqx.error_if(labels, jnp.any(bad), f"labels must be in range({self.num_classes}).")
        if np.any(np.asarray(bad)):
            raise ArgumentError(f"labels must be in range({self.num_classes}), got {np.unique(np.asarray(labels))}.")
        return labels

    def _mask(self, labels, x) -> Array | None:
        """0 on the components of each row's class, -inf elsewhere, shape (..., K); None without labels."""
        if labels is None:
            return None
        labels = self._labels(labels, tuple(x.shape[:-1]))
        return jnp.where(labels[..., None] == self.classes, 0.0, -jnp.inf).astype(jnp.result_type(x, float))

    # ---- exact marginals ---------------------------------------------------------------------------------

    def log_prob(self, x: Float[Array, "*batch dim"], sigma: ArrayLike = 0.0, labels=None) -> Float[Array, "*batch"]:
        """log p_sigma(x | labels) (one class per row), or log p_sigma(x) with ``labels=None``."""
        x = jnp.asarray(x)
        self.mixture._check(x, sigma)
        mask = self._mask(labels, x)
        lp = jax.nn.logsumexp(self.mixture._parts(x, sigma, mask)[3], axis=-1)
        return lp if labels is None else lp - jnp.log(self.class_priors)[jnp.asarray(labels)]

    def score(self, x: Float[Array, "*batch dim"], sigma: ArrayLike = 0.0, labels=None) -> Float[Array, "*batch dim"]:
        """grad_x log p_sigma(x | labels), or of the unconditional density with ``labels=None``."""
        x = jnp.asarray(x)
        self.mixture._check(x, sigma)
        return self.mixture._score(x, *self.mixture._parts(x, sigma, self._mask(labels, x))[:3])

    def denoise(self, x: Float[Array, "*batch dim"], sigma: ArrayLike, labels=None) -> Float[Array, "*batch dim"]:
        """E[x0 | x, labels] (or E[x0 | x] with ``labels=None``) at noise level sigma."""
        x = jnp.asarray(x)
        self.mixture._check(x, sigma)
        return self.mixture._denoise(x, *self.mixture._parts(x, sigma, self._mask(labels, x))[:3])

    def __call__(self, x: Float[Array, "*batch dim"], sigma: ArrayLike, labels=None) -> Float[Array, "*batch dim"]:
        return self.denoise(x, sigma, labels)

    def at_infinity(self, eps: Float[Array, "batch dim"], labels=None) -> Float[Array, "batch dim"]:
        """lim_{sigma -> inf} D(sigma eps, sigma | y) = E[x0 | y] (E[x0] with ``labels=None``)."""
        self.mixture._check(eps)
        if labels is None:
            return jnp.broadcast_to(self.mean, eps.shape).astype(eps.dtype)
        return self.class_means[self._labels(labels, tuple(eps.shape[:-1]))].astype(eps.dtype)

    # ---- samples -----------------------------------------------------------------------------------------

    def sample(self, key: PRNGKeyArray, n: int, labels=None) -> Float[Array, "n dim"]:
        """n exact samples: of the unconditional mixture (``labels=None``), of one class (an int) or one
        per entry of an (n,) integer array of labels."""
        if labels is None:
            return self.mixture.sample(key, n)
        labels = jnp.full((n,), self._check_label_int(labels)) if isinstance(labels, int | np.integer) else labels
        labels = self._labels(labels, (n,))
        kc, kn = jax.random.split(key)
        logits = self.mixture.log_weights + jnp.where(labels[:, None] == self.classes, 0.0, -jnp.inf)
        return self.mixture._draw(kn, jax.random.categorical(kc, logits))

    def sample_labeled(self, key: PRNGKeyArray, n: int) -> tuple[Float[Array, "n dim"], Int[Array, " n"]]:
        """n exact pairs (x0, y) of the joint distribution (training data for a conditional model)."""
        kc, kn = jax.random.split(key)
        comp = jax.random.categorical(kc, self.mixture.log_weights, shape=(n,))
        return self.mixture._draw(kn, comp), self.classes[comp]


def _tree_components(noise: np.ndarray, angle0: float, depth: int, per_branch: int):
    """Weights, means (n, 2) and covariances (n, 2, 2) of one class's tree, in raw units.

    Branch b (heap order: children of b are 2b+1, 2b+2) at level L has length 0.292 0.8^L (1 + 0.2 n_b0),
    and its children turn by +-0.7^L (1 + 0.2 n_b1,2) (the numbers of EDM2's toy). Each branch carries
    ``per_branch`` components evenly placed over 7%..93% of its length, with weight length * 0.5^L,
    standard deviation 0.06 * length along it and 0.012 * 0.8^L across it.
    """
    weights, means, covs = [], [], []
    start = {0: (np.zeros(2), angle0)}
    for b in range(2**depth - 1):
        level = int(np.floor(np.log2(b + 1)))
        pos, angle = start.pop(b)
        u = np.array([np.cos(angle), np.sin(angle)])
        length = 0.292 * 0.8**level * (1 + 0.2 * noise[b, 0])
        along, across = 0.06 * length, 0.012 * 0.8**level
        cov = along**2 * np.outer(u, u) + across**2 * (np.eye(2) - np.outer(u, u))
        for frac in np.linspace(0.07, 0.93, per_branch):
            weights.append(length * 0.5**level)
            means.append(pos + frac * length * u)
            covs.append(cov)
        for child, sign in ((2 * b + 1, 1.0), (2 * b + 2, -1.0)):
            start[child] = (pos + length * u, angle + sign * 0.7**level * (1 + 0.2 * noise[b, 1 if sign > 0 else 2]))
    return np.array(weights), np.array(means), np.array(covs)


def _merge(weights, means, covs, per_branch: int):
    """Moment-match each branch's _FINE components, in ``per_branch`` runs of neighbours, into one Gaussian per
    run (the run's weight, mean and covariance, within plus between): the coarse mixture has the same overall
    mean and covariance, its components are longer along the branch."""
    shape = (-1, _FINE)
    w, mu, cov = weights.reshape(shape), means.reshape(shape + (2,)), covs.reshape(shape + (2, 2))
    out_w, out_mu, out_cov = [], [], []
    for run in np.array_split(np.arange(_FINE), per_branch):
        wr = w[:, run].sum(1)
        q = w[:, run] / wr[:, None]
        m = np.einsum("bi,bid->bd", q, mu[:, run])
        dev = mu[:, run] - m[:, None]
        out_w.append(wr)
        out_mu.append(m)
        out_cov.append(np.einsum("bi,bide->bde", q, cov[:, run] + dev[..., :, None] * dev[..., None, :]))
    return np.stack(out_w, 1).ravel(), np.stack(out_mu, 1).reshape(-1, 2), np.stack(out_cov, 1).reshape(-1, 2, 2)


_FINE = 8


def branching_tree(
    key: PRNGKeyArray, num_classes: int = 2, depth: int = 7, per_branch: int = _FINE, std: float = 0.5
) -> ClassMixture:
    """A 2-D class-conditional mixture whose classes are binary trees of thin Gaussian components.

    In the spirit of the toy example of Karras et al. (2024), "Guiding a diffusion model with a bad version of
    itself" (EDM2's ``toy_example.py``): class c grows from the origin at angle pi/4 + 2 pi c / num_classes,
    each branch splitting into two thinner, lighter ones ``depth`` times (2^depth - 1 branches per class,
    their lengths and turns perturbed by normals drawn from ``key``, so the tree is a function of the key).
    Each branch carries 8 elongated full-covariance components; the mixture is then moved and scaled per axis
    to mean 0 and standard deviation ``std`` (0.5, EDM's sigma_data), the same map for every class.

    Args:
        key: PRNG key (concrete) for the branches' perturbations.
        num_classes: number of trees (classes).
        depth: number of branching levels (7 in EDM2's toy: 2 x 127 x 8 = 2,032 components).
        per_branch: components per branch, 1..8: fewer ones are moment-matched runs of the 8 (same tree, same
            mean and covariance, coarser and wider along the branches: a controlled "bad" model, exact).
        std: per-axis standard deviation of the unconditional mixture.

    Combine with :meth:`ClassMixture.widen` for too-wide models: e.g. ``good = tree.widen(1.2)`` and
    ``bad = branching_tree(key, per_branch=2).widen(2.0)``.
    """
    for name, value, low in (("num_classes", num_classes, 1), ("depth", depth, 1), ("per_branch", per_branch, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ArgumentError(f"{name} must be an integer >= {low}, got {value!r}.")
    if per_branch > _FINE:
        raise ArgumentError(f"per_branch must be at most {_FINE}, got {per_branch}.")
    if not np.isfinite(std) or not std > 0:
        raise ArgumentError(f"std must be a finite number > 0, got {std!r}.")
    parts, labels = [], []
    for c in range(num_classes):
        noise = np.asarray(jax.random.normal(jax.random.fold_in(key, c), (2**depth - 1, 3)), dtype=np.float64)
        fine = _tree_components(noise, np.pi / 4 + 2 * np.pi * c / num_classes, depth, _FINE)
        parts.append(fine if per_branch == _FINE else _merge(*fine, per_branch))
        labels.append(np.full(len(parts[-1][0]), c))
    w, mu, cov = (np.concatenate(p) for p in zip(*parts, strict=True))
    w = w / w.sum()
    mean = w @ mu
    second = np.einsum("k,kde->de", w, cov + mu[:, :, None] * mu[:, None, :]) - np.outer(mean, mean)
    scale = std / np.sqrt(np.diag(second))
    return ClassMixture(full_mixture(w, (mu - mean) * scale, cov * np.outer(scale, scale)), np.concatenate(labels))
