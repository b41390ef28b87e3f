"""Keyed, pure datasets: the batch at step ``s`` is a jittable function of ``(key, s)``.

Because a batch depends on nothing but the run's data key and the step counter, a training run that is
stopped at step ``k`` and restarted from a checkpoint of step ``k`` sees exactly the batches it would have
seen without the interruption: there is no iterator state to save.

* :class:`ArrayDataset` shuffles a fixed set of examples once per epoch. With ``B`` the batch size and
  ``M = N // B`` (``drop_last``) or ``ceil(N / B)`` batches per epoch, step ``s`` is batch ``i = s mod M`` of
  epoch ``e = s // M``, whose indices are ``perm_e[i B : (i + 1) B]`` with
  ``perm_e = jax.random.permutation(fold_in(key, e), N)``. Without ``drop_last`` the last batch of an epoch
  is completed with the first examples of the same permutation (shapes must be static under ``jit``).
* :class:`SampledDataset` draws ``sample_fn(fold_in(key, s), B)`` afresh at every step (2-D toys, analytic
  targets).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Int, PRNGKeyArray, PyTree

from genmodels.errors import ArgumentError, ArgumentTypeError


class AbstractDataset(eqx.Module):
    """A source of training batches; ``batch(key, step)`` must be pure and jittable.

    ``key`` is the PRNG key of the run's data stream and ``step`` a (possibly traced) int32 step counter.
    Every batch has the same shapes, ``batch_size`` rows on the leading axis of each leaf.
    """

    batch_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def batch(self, key: PRNGKeyArray, step: Int[ArrayLike, ""]) -> PyTree[Array]:
        """The batch of training step ``step``: a pytree of arrays with leading dimension ``batch_size``."""


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ArgumentError(f"batch_size must be a positive int, got {batch_size!r}.")
    return int(batch_size)


class ArrayDataset(AbstractDataset):
    """Examples held in memory, reshuffled every epoch with a key (see the module docstring).

    Args:
        arrays: a pytree of arrays (numpy or jax), all with the same leading dimension ``N`` (the examples),
            e.g. an image array or ``(images, labels)``. Floating arrays must be finite.
        batch_size: rows per batch, ``1 <= batch_size <= N``.
        drop_last: drop the final incomplete batch of each epoch (default), so every batch holds distinct
            examples and each example appears at most once per epoch; otherwise the last batch is padded
            with the first examples of the epoch's permutation, so each example appears at least once.
    """

    arrays: PyTree[Array]
    batch_size: int = eqx.field(static=True)
    drop_last: bool = eqx.field(static=True)

    def __init__(self, arrays: PyTree[ArrayLike], batch_size: int, drop_last: bool = True):
        leaves, treedef = jax.tree.flatten(arrays)
        if not leaves:
            raise ArgumentError("arrays must hold at least one array (got an empty pytree).")
        converted = []
        for i, leaf in enumerate(leaves):
            a = np.asarray(leaf) if not isinstance(leaf, jax.Array) else leaf
            if a.ndim < 1:
                raise ArgumentError(f"every array needs a leading example axis; leaf {i} is a scalar.")
            if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
                raise ArgumentTypeError(f"leaf {i} of arrays has non-numeric dtype {a.dtype}.")
            converted.append(a)
        n = converted[0].shape[0]
        for i, a in enumerate(converted):
            if a.shape[0] != n:
                shapes = [tuple(x.shape) for x in converted]
                raise ArgumentError(f"all arrays must share the leading (example) dimension; got shapes {shapes}.")
            if np.issubdtype(a.dtype, np.floating) and not bool(np.all(np.isfinite(np.asarray(a)))):
                bad = int(np.sum(~np.isfinite(np.asarray(a))))
                raise ArgumentError(f"leaf {i} of arrays contains {bad} NaN or inf values; clean the data first.")
        if n == 0:
            raise ArgumentError("arrays are empty (leading dimension 0); a dataset needs at least one example.")
        batch_size = _check_batch_size(batch_size)
        if batch_size > n:
            raise ArgumentError(f"batch_size={batch_size} exceeds the number of examples N={n}.")
        self.arrays = jax.tree.unflatten(treedef, [jnp.asarray(a) for a in converted])
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)

    @property
    def num_examples(self) -> int:
        return jax.tree.leaves(self.arrays)[0].shape[0]

    @property
    def steps_per_epoch(self) -> int:
        n, b = self.num_examples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def indices(self, key: PRNGKeyArray, step: Int[ArrayLike, ""]) -> Int[Array, " batch"]:
        """Example indices of the batch at ``step`` (pure, jittable)."""
        n, b, m = self.num_examples, self.batch_size, self.steps_per_epoch
        step = jnp.asarray(step, jnp.int32)
        epoch, i = step // m, step % m
        perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)
        if not self.drop_last and m * b > n:
            perm = jnp.concatenate([perm, perm[: m * b - n]])
        return jax.lax.dynamic_slice_in_dim(perm, i * b, b)

    def batch(self, key: PRNGKeyArray, step: Int[ArrayLike, ""]) -> PyTree[Array]:
        idx = self.indices(key, step)
        return jax.tree.map(lambda a: jnp.take(a, idx, axis=0), self.arrays)


class SampledDataset(AbstractDataset):
    """Fresh samples at every step: ``batch(key, s) = sample_fn(fold_in(key, s), batch_size)``.

    Args:
        sample_fn: ``(key, n) -> array`` (or pytree of arrays) with ``n`` rows, pure and jittable, e.g. a
            toy generator from :func:`genmodels.data.toy` or a target's bound ``sample`` method.
        batch_size: rows per batch.
    """

    sample_fn: Callable[[PRNGKeyArray, int], PyTree[Array]]
    batch_size: int = eqx.field(static=True)

    def __init__(self, sample_fn: Callable[[PRNGKeyArray, int], PyTree[Array]], batch_size: int):
        if not callable(sample_fn):
            raise ArgumentTypeError(f"sample_fn must be callable as sample_fn(key, n), got {type(sample_fn).__name__}.")
        self.sample_fn = sample_fn
        self.batch_size = _check_batch_size(batch_size)

    def batch(self, key: PRNGKeyArray, step: Int[ArrayLike, ""]) -> PyTree[Array]:
        out = self.sample_fn(jax.random.fold_in(key, jnp.asarray(step, jnp.int32)), self.batch_size)
        for leaf in jax.tree.leaves(out):
            if leaf.ndim < 1 or leaf.shape[0] != self.batch_size:
                raise ArgumentError(
                    f"sample_fn(key, {self.batch_size}) must return arrays with {self.batch_size} rows, "
                    f"got shape {tuple(leaf.shape)}."
                )
        return out


def check_batch(dataset: AbstractDataset, key: PRNGKeyArray) -> PyTree[jax.ShapeDtypeStruct]:
    """Shapes of ``dataset.batch(key, 0)`` (abstract evaluation, nothing computed); checks the batch size."""
    if not isinstance(dataset, AbstractDataset):
        raise ArgumentTypeError(f"dataset must be a genmodels.data.AbstractDataset, got {type(dataset).__name__}.")
    shapes = jax.eval_shape(dataset.batch, key, jnp.int32(0))
    leaves = jax.tree.leaves(shapes)
    if not leaves:
        raise ArgumentError("dataset.batch returned no arrays.")
    for leaf in leaves:
        if len(leaf.shape) < 1 or leaf.shape[0] != dataset.batch_size:
            raise ArgumentError(
                f"dataset.batch must return arrays with batch_size={dataset.batch_size} leading rows, "
                f"got shape {tuple(leaf.shape)}."
            )
    return shapes
