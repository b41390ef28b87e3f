"""2-D toy distributions, sampled on the fly from a key (pure, jittable ``(key, n) -> (n, 2)``).

Each generator draws from a raw shape and applies one fixed affine map ``x -> c (x - mu)``, where ``mu`` is
the exact mean of the raw distribution and ``c`` the isotropic scale that makes the *average* per-coordinate
variance exactly 1, i.e. ``E|x|^2 = 2`` after normalisation (``mu`` and ``c`` are computed in closed form
below; an isotropic scale keeps each shape's aspect ratio, so one coordinate may have std ~1.2 and the
other ~0.7). The raw shapes, with ``U`` uniform on [0, 1] and noise ``N(0, n^2)`` per coordinate:

* ``8gaussians``: eight equal Gaussians on a circle, radius 1.4, std 0.14 (ratio 0.1); this one is
  :func:`toy_target` ``("8gaussians")``, a :class:`genmodels.targets.GaussianMixture` with exact density.
* ``moons``: two interleaved half circles, ``(cos a, sin a)`` and ``(1 - cos a, 1/2 - sin a)`` with
  ``a = pi U``, noise 0.1.
* ``checkerboard``: uniform on the 8 dark cells of a 4x4 board on [-2, 2]^2 (cells with i + j even).
* ``swissroll``: ``(t cos t, t sin t)`` with ``t = 3 pi / 2 (1 + 2U)``, noise 0.5.
* ``pinwheel``: five arms; ``f = (1 + 0.3 z1, 0.1 z2)`` rotated by ``2 pi k / 5 + 0.25 exp(f1)``.
* ``circles``: two concentric circles of radii 1 and 1/2, equally likely, noise 0.04.
* ``spirals``: two opposite arms ``+-r (cos 3 pi r, sin 3 pi r)`` with ``r = sqrt(U)``, noise 0.02.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from genmodels.data._dataset import SampledDataset
from genmodels.errors import ArgumentError
from genmodels.protocols import HasExactSamples, require
from genmodels.targets import GaussianMixture, eight_gaussians

SampleFn = Callable[[PRNGKeyArray, int], Float[Array, "n 2"]]

_8G_RADIUS, _8G_STD = 1.4, 0.14


def _normalised(mean: tuple[float, float], second_moment: float) -> Callable:
    """Decorator: ``c (raw(key, n) - mean)`` with c chosen so that the mean per-coordinate variance is 1."""
    var = (second_moment - mean[0] ** 2 - mean[1] ** 2) / 2
    scale = 1.0 / math.sqrt(var)

    def wrap(raw):
        def sample(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
            x = raw(key, n)
            return ((x - jnp.asarray(mean, x.dtype)) * scale).astype(jnp.float32)

        sample.__name__ = raw.__name__.lstrip("_")
        sample.__doc__ = f"n samples of the '{sample.__name__}' toy, shape (n, 2), normalised (module docstring)."
        return sample

    return wrap


def _angle(a):
    return jnp.stack([jnp.cos(a), jnp.sin(a)], axis=-1)


def eight_gaussians_sample(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    """n samples of the '8gaussians' toy (exactly ``toy_target('8gaussians')``), shape (n, 2)."""
    return eight_gaussians(_8G_RADIUS, _8G_STD).sample(key, n).astype(jnp.float32)


_MOONS_NOISE = 0.1


# E[x^2] = (1/2 + 3/2) / 2 = 1, E[y^2] = (1/2 + 3/4 - 2/pi) / 2
@_normalised((0.5, 0.25), 1.0 + (1.25 - 2 / math.pi) / 2 + 2 * _MOONS_NOISE**2)
def _moons(key, n):
    ka, km, kn = jax.random.split(key, 3)
    a = jnp.pi * jax.random.uniform(ka, (n,))
    upper = _angle(a)
    lower = jnp.stack([1.0 - jnp.cos(a), 0.5 - jnp.sin(a)], axis=-1)
    which = jax.random.bernoulli(km, 0.5, (n, 1))
    return jnp.where(which, upper, lower) + _MOONS_NOISE * jax.random.normal(kn, (n, 2))


@_normalised((0.0, 0.0), 2 * 4.0 / 3)
def _checkerboard(key, n):
    kc, ku = jax.random.split(key)
    # dark cells (i, j) with i + j even: j = 2 * m + (i mod 2), m in {0, 1}
    c = jax.random.randint(kc, (n,), 0, 8)
    i, m = c // 2, c % 2
    j = 2 * m + (i % 2)
    cell = jnp.stack([i, j], axis=-1).astype(jnp.float32)
    return cell + jax.random.uniform(ku, (n, 2)) - 2.0


_SR_A, _SR_B, _SR_NOISE = 1.5 * math.pi, 4.5 * math.pi, 0.5


@_normalised(
    ((_SR_A + _SR_B) / (_SR_B - _SR_A), 2.0 / (_SR_B - _SR_A)),
    (_SR_A**2 + _SR_A * _SR_B + _SR_B**2) / 3 + 2 * _SR_NOISE**2,
)
def _swissroll(key, n):
    kt, kn = jax.random.split(key)
    t = _SR_A + (_SR_B - _SR_A) * jax.random.uniform(kt, (n,))
    return t[:, None] * _angle(t) + _SR_NOISE * jax.random.normal(kn, (n, 2))


_PW_ARMS, _PW_RADIAL, _PW_TANGENTIAL, _PW_RATE = 5, 0.3, 0.1, 0.25


@_normalised((0.0, 0.0), 1.0 + _PW_RADIAL**2 + _PW_TANGENTIAL**2)
def _pinwheel(key, n):
    kk, kz = jax.random.split(key)
    arm = jax.random.randint(kk, (n,), 0, _PW_ARMS)
    f = jax.random.normal(kz, (n, 2)) * jnp.array([_PW_RADIAL, _PW_TANGENTIAL]) + jnp.array([1.0, 0.0])
    angle = 2 * jnp.pi * arm / _PW_ARMS + _PW_RATE * jnp.exp(f[:, 0])
    c, s = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([c * f[:, 0] - s * f[:, 1], s * f[:, 0] + c * f[:, 1]], axis=-1)


_CI_NOISE = 0.04


@_normalised((0.0, 0.0), (1.0 + 0.25) / 2 + 2 * _CI_NOISE**2)
def _circles(key, n):
    ka, kr, kn = jax.random.split(key, 3)
    radius = jnp.where(jax.random.bernoulli(kr, 0.5, (n,)), 1.0, 0.5)
    a = 2 * jnp.pi * jax.random.uniform(ka, (n,))
    return radius[:, None] * _angle(a) + _CI_NOISE * jax.random.normal(kn, (n, 2))


_SP_TURNS, _SP_NOISE = 3 * math.pi, 0.02


@_normalised((0.0, 0.0), 0.5 + 2 * _SP_NOISE**2)
def _spirals(key, n):
    ku, ks, kn = jax.random.split(key, 3)
    r = jnp.sqrt(jax.random.uniform(ku, (n,)))
    sign = jnp.where(jax.random.bernoulli(ks, 0.5, (n,)), 1.0, -1.0)
    return (sign * r)[:, None] * _angle(_SP_TURNS * r) + _SP_NOISE * jax.random.normal(kn, (n, 2))


TOYS: dict[str, SampleFn] = {
    "8gaussians": eight_gaussians_sample,
    "moons": _moons,
    "checkerboard": _checkerboard,
    "swissroll": _swissroll,
    "pinwheel": _pinwheel,
    "circles": _circles,
    "spirals": _spirals,
}


def toy(name: str) -> SampleFn:
    """The sampler ``(key, n) -> (n, 2) float32`` of a 2-D toy; ``name`` is one of :data:`TOYS`."""
    if name not in TOYS:
        raise ArgumentError(f"unknown toy dataset {name!r}; expected one of {tuple(TOYS)}.")
    return TOYS[name]


def toy_dataset(name: str, batch_size: int) -> SampledDataset:
    """A :class:`SampledDataset` drawing fresh ``(batch_size, 2)`` batches of a 2-D toy at every step."""
    return SampledDataset(toy(name), batch_size)


def toy_target(name: str) -> GaussianMixture:
    """The exact distribution of a toy that is a Gaussian mixture (only ``'8gaussians'``)."""
    if name != "8gaussians":
        raise ArgumentError(f"only '8gaussians' has an analytic target, got {name!r}.")
    return eight_gaussians(_8G_RADIUS, _8G_STD)


def target_dataset(target, batch_size: int) -> SampledDataset:
    """A :class:`SampledDataset` of exact samples from an analytic target with ``sample(key, n)``,
    e.g. ``gm.targets.eight_gaussians()`` or ``gm.targets.random_mixture(key, dim)``."""
    hint = "Pass an analytic target with exact samples, sample(key, n), such as gm.targets.eight_gaussians()."
    require("target", target, HasExactSamples, "target_dataset", hint)
    return SampledDataset(target.sample, batch_size)
