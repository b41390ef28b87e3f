"""What a run was trained with, recorded in each checkpoint and compared on resume.

A resumed run must continue the same optimisation. When no ``config`` is given the checkpoint is the only
record, so ``fit`` stores a fingerprint of

* the optimiser: an outline of its state's tree structure (e.g. ``ScaleByAdamState(count=int32[], mu=State,
  nu=State)``) and its hyper-parameters, read from the closures that optax transformations and schedules
  are built from (``scale_by_adam.b1``, ``cosine_decay_schedule.init_value``, ...);
* the loss: its qualified name, the bound arguments of a ``functools.partial``, the fields of a loss object
  and the numbers its closure captures;
* the data: the dataset's class, number of examples and a digest of a sample of it (an in-memory
  dataset's evenly spaced examples, read on the host; otherwise the first batch): shapes, dtypes, sha256 of
  the bytes, and per-array mean / std / min / max, so that a batch that differs only by float rounding,
  e.g. on another device, is still the same data.

:func:`fingerprint_diff` names what differs; ``fit`` refuses such a resume, or only warns when the run
directory has a ``config`` equal to the run's (the config is then the run's declared identity: this is the
way to continue on purpose, e.g. after an optax upgrade that renamed its internals). The same closure walk finds every ``learning_rate`` of an
optimiser, which :func:`check_learning_rates` evaluates over the run's steps: a negative or non-finite
learning rate (gradient ascent) is refused before training.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import types
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from genmodels.errors import ArgumentError

_SCALARS = (bool, int, float, str, type(None), np.number, np.bool_)
_MAX_ITEMS = 16  # per tuple / list: closures over long sequences are sampled
_MAX_DEPTH = 12


def _owner(fn: Any) -> str:
    name = fn.__qualname__ if isinstance(fn, types.FunctionType) else type(fn).__qualname__
    return name.split(".<locals>")[0]


def describe(obj: Any) -> dict[str, str]:
    """A flat ``{path: value}`` description of a callable: qualified names and captured numbers."""
    out: dict[str, str] = {}
    _walk(obj, "", "", out, 0)
    return out


def _walk(x: Any, path: str, owner: str, out: dict[str, str], depth: int) -> None:  # noqa: C901
    if depth > _MAX_DEPTH or len(out) > 400:
        return
    if isinstance(x, _SCALARS):
        out[path] = f"{owner}.{path.rsplit('.', 1)[-1]}={x!r}" if owner else repr(x)
    elif isinstance(x, (tuple, list)):
        for i, v in enumerate(x[:_MAX_ITEMS]):
            _walk(v, f"{path}[{i}]", owner, out, depth + 1)
    elif isinstance(x, functools.partial):
        _walk(x.func, path + ".func", owner, out, depth + 1)
        for i, a in enumerate(x.args):
            _walk(a, f"{path}.args[{i}]", _owner(x.func), out, depth + 1)
        for k, v in sorted(x.keywords.items()):
            _walk(v, f"{path}.{k}", _owner(x.func), out, depth + 1)
    elif isinstance(x, types.FunctionType):
        out[path + "()"] = x.__qualname__
        for name, cell in zip(x.__code__.co_freevars, x.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            _walk(value, f"{path}.{name}", _owner(x), out, depth + 1)
    elif isinstance(x, types.MethodType):
        _walk(x.__func__, path, owner, out, depth + 1)
        _walk(x.__self__, path + ".self", owner, out, depth + 1)
    elif isinstance(x, (jax.Array, np.ndarray)):  # numbers held as arrays by value, larger arrays by shape
        small = np.size(x) <= 16 and not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        out[path] = f"{owner}.{path.rsplit('.', 1)[-1]}={np.asarray(x).tolist()!r}" if small else f"array{np.shape(x)}"
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):  # eqx.Module values and dataclasses
        out[path + "()"] = type(x).__qualname__
        try:
            fields = vars(x)
        except TypeError:  # __slots__
            return
        for f in dataclasses.fields(x):
            if f.name in fields:
                _walk(fields[f.name], f"{path}.{f.name}", type(x).__qualname__, out, depth + 1)
    else:
        out[path + "()"] = type(x).__qualname__


def _outline(x: Any, depth: int = 0) -> str:
    """Compact structure of an optimiser state: named tuples by name, other containers by type."""
    if depth > 8:
        return "..."
    if isinstance(x, (tuple, list)):  # optax states are (named) tuples
        name = type(x).__name__ if type(x) not in (tuple, list) else ""
        return name + "(" + ", ".join(_outline(v, depth + 1) for v in x) + ")"
    if isinstance(x, (jax.Array, np.ndarray)):
        return f"{np.dtype(x.dtype).name}{list(np.shape(x))}"
    return type(x).__name__


def optimizer_fingerprint(optimizer: Any, opt_state: Any) -> dict:
    treedef = str(jax.tree.structure(opt_state))
    return {"state": _outline(opt_state), "structure": hashlib.sha256(treedef.encode()).hexdigest()[:16],
            "hyper": describe(optimizer.update)}  # fmt: skip


@eqx.filter_jit
def _first_batch(dataset: Any, data_key: jax.Array) -> Any:
    return dataset.batch(data_key, jnp.int32(0))


def _data_sample(dataset: Any, data_key: jax.Array) -> list[np.ndarray]:
    """The rows a data fingerprint digests: for an in-memory dataset up to 64 evenly spaced examples of each
    array (read on the host, nothing compiled), otherwise the first batch."""
    from genmodels.data import ArrayDataset

    if isinstance(dataset, ArrayDataset):
        n = dataset.num_examples
        rows = np.unique(np.linspace(0, n - 1, min(n, 64)).round().astype(np.int64))
        return [np.asarray(a[rows]) for a in jax.tree.leaves(dataset.arrays)]
    return [np.asarray(a) for a in jax.tree.leaves(jax.device_get(_first_batch(dataset, data_key)))]


def data_fingerprint(dataset: Any, data_key: jax.Array) -> dict:
    from genmodels.data import ArrayDataset

    sample = _data_sample(dataset, data_key)
    h = hashlib.sha256()
    moments = []
    for a in sample:
        h.update(f"{a.dtype.str}{a.shape}".encode() + np.ascontiguousarray(a).tobytes())
        f = a.astype(np.float64)
        moments.append([float(f.mean()), float(f.std()), float(f.min()), float(f.max())])
    return {"class": type(dataset).__qualname__,
            "length": dataset.num_examples if isinstance(dataset, ArrayDataset) else None,
            "batch": {"shapes": [list(a.shape) for a in sample], "dtypes": [str(a.dtype) for a in sample],
                      "sha256": h.hexdigest(), "moments": moments}}  # fmt: skip


def _dict_diff(old: dict, new: dict) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    shown = [f"{old.get(k, '(none)')} -> {new.get(k, '(none)')}" for k in keys[:3]]
    return "; ".join(shown) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")


def _data_diff(old: dict, new: dict) -> str | None:
    for key in ("class", "length"):
        if old.get(key) != new.get(key):
            return f"dataset {key} {old.get(key)!r} -> {new.get(key)!r}"
    a, b = old["batch"], new["batch"]
    if a["shapes"] != b["shapes"] or a["dtypes"] != b["dtypes"]:
        return f"first batch shapes/dtypes {a['shapes']} {a['dtypes']} -> {b['shapes']} {b['dtypes']}"
    if a["sha256"] != b["sha256"] and not np.allclose(a["moments"], b["moments"], rtol=1e-4, atol=1e-6):
        return f"first batch differs (mean/std/min/max {a['moments'][0]} -> {b['moments'][0]})"
    return None


def fingerprint_diff(old: dict, new: dict) -> list[str]:
    """What differs between two fingerprints (empty when they agree); parts absent from ``old`` are skipped."""
    diffs = []
    if "optimizer" in old:
        o, n = old["optimizer"], new["optimizer"]
        if o["state"] != n["state"] or o["structure"] != n["structure"]:
            diffs.append(f"the optimiser's state differs ({o['state']} -> {n['state']})")
        elif o["hyper"] != n["hyper"]:
            diffs.append(f"the optimiser's hyper-parameters differ ({_dict_diff(o['hyper'], n['hyper'])})")
    if "loss" in old and old["loss"] != new["loss"]:
        diffs.append(f"the loss differs ({_dict_diff(old['loss'], new['loss'])})")
    if "data" in old and (why := _data_diff(old["data"], new["data"])):
        diffs.append(f"the data differs ({why})")
    return diffs


def _learning_rates(optimizer: Any) -> list[Any]:
    found: list[Any] = []

    def visit(x: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(x, (tuple, list)):
            for v in x[:_MAX_ITEMS]:
                visit(v, depth + 1)
        elif isinstance(x, types.FunctionType):
            for name, cell in zip(x.__code__.co_freevars, x.__closure__ or (), strict=False):
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                if name == "learning_rate":
                    found.append(value)
                else:
                    visit(value, depth + 1)

    visit(optimizer.update, 0)
    return found


def _first_update(optimizer: Any) -> jax.Array:
    p = jnp.zeros((), jnp.float32)
    return optimizer.update(jnp.ones((), jnp.float32), optimizer.init(p), p)[0]


def check_learning_rates(optimizer: Any, steps: int) -> None:
    """Refuse a negative or non-finite learning rate: the first update of a scalar parameter at 0 with
    gradient 1 must not be positive (ascent) or NaN, and every schedule the optimiser holds as a
    ``learning_rate`` is evaluated over ``0..steps`` (2048 points at most)."""
    try:
        first = float(jax.jit(_first_update, static_argnums=0)(optimizer))
    except Exception:  # noqa: BLE001 - an optimiser tied to a parameter structure: the schedules are checked
        first = 0.0
    if not first <= 0.0:
        raise ArgumentError(
            f"the optimizer's first update of a parameter with gradient +1 is {first}: it does not descend. A "
            "learning rate must be finite and >= 0 (a negative one is gradient ascent)."
        )
    points = np.unique(np.concatenate([np.arange(min(steps, 1000) + 1), np.linspace(0, steps, 1001).round()]))
    points = np.pad(points, (0, 2048 - len(points)), mode="edge").astype(np.int32)  # one shape: one compile
    for lr in _learning_rates(optimizer):
        at, values = _evaluate(lr, points)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if bad.size:
            raise ArgumentError(
                f"the optimizer's learning rate is {float(values[bad[0]])} at step {int(at[bad[0]])}; a learning rate "
                "must be finite and >= 0 (a negative one is gradient ascent). Check the schedule given to "
                "gm.train.adamw / optax."
            )


def _evaluate(lr: Callable | float, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(steps, learning rates at those steps): all ``points`` at once, or a sample of 100 one by one."""
    if not callable(lr):
        return np.zeros(1, np.int32), np.atleast_1d(np.asarray(lr, np.float64)).ravel()[:1]
    try:
        values = np.asarray(jax.jit(lr)(jnp.asarray(points)), np.float64)
        if values.shape == points.shape:
            return points, values
    except Exception:  # noqa: BLE001 - a schedule written for scalar steps only
        pass
    sample = points[:: max(1, len(points) // 100)]
    return sample, np.array([float(lr(int(t))) for t in sample])
