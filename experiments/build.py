"""genmodels objects from the names of ``experiments/catalog.py``: samplers, model families, autoregressive
models. This module imports JAX; the scripts import it inside ``run``."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from flax import nnx

import genmodels as gm
from experiments import catalog


def sampler(name: str, schedule=None, **options):
    """The sampler ``name`` (a name of ``catalog.SAMPLERS`` or a ``gm.samplers`` class name) on ``schedule``
    (None for the adaptive ones), with the table's fixed options updated by ``options``."""
    entry = catalog.SAMPLERS[catalog.sampler_name(name)]
    cls = getattr(gm.samplers, entry.cls)
    kwargs = {**dict(entry.options), **options}
    return cls(**kwargs) if schedule is None else cls(schedule, **kwargs)


def family_model(family: str, net: nnx.Module, *, sigma_data: float = 0.5) -> nnx.Module:
    """The model of ``family`` (``catalog.FAMILIES``) around the network ``net``."""
    kind = catalog.FAMILIES[family].model
    if kind == "edm":
        return gm.models.EDMModel(net, sigma_data=sigma_data)
    if kind == "vp":
        return gm.models.EDMModel(net, precond=gm.denoisers.VPPrecond())
    if kind == "ve":
        return gm.models.EDMModel(net, precond=gm.denoisers.VEPrecond())
    if kind == "score":
        return gm.models.ScoreModel(net)
    return gm.models.PathModel(net, gm.paths.Linear(), gm.denoisers.Velocity())


def family_loss(family: str, *, sigma_range: tuple[float, float] | None = None, ladder=None) -> Callable:
    """``loss_fn(model, batch, key)`` of ``family``: VE uses ``sigma_range``, NCSN and SSM the noise ``ladder``
    (descending sigmas); for ``rectified`` the first stage's loss."""
    if family == "ve":
        return functools.partial(gm.losses.ve_loss, sigma_min=sigma_range[0], sigma_max=sigma_range[1])
    if family == "ncsn":
        return functools.partial(gm.losses.ncsn_loss, sigmas=ladder)
    if family == "ssm":
        return functools.partial(gm.losses.ssm_loss, noise=gm.losses.Ladder(ladder), variance_reduction=True)
    if family == "ot-cfm":
        return functools.partial(gm.losses.cfm_loss, coupling=gm.losses.SinkhornCoupling())
    return getattr(gm.losses, catalog.FAMILIES[family].loss)


def ar_model(config, event_shape: tuple[int, ...], rngs: nnx.Rngs) -> nnx.Module:
    """The autoregressive model ``config.model`` (``catalog.AR_MODELS``) over ``event_shape``, sized by the
    fields of ``config`` (``configs.binary_density.Config``: hidden, num_masks, order_agnostic, direct, dim,
    heads, layers, channels, gated)."""
    A, c = gm.autoregressive, config
    n = int(np.prod(event_shape))
    if c.model == "fvsbn":
        return A.FVSBN(n, rngs=rngs)
    if c.model == "nade":
        return A.NADE(n, c.hidden[0], rngs=rngs)
    if c.model == "made":
        return A.MADE(n, tuple(c.hidden), order_agnostic=c.order_agnostic, num_masks=c.num_masks, direct=c.direct,
                      rngs=rngs)  # fmt: skip
    if c.model == "transformer":
        return A.Transformer(n, c.dim, c.heads, c.layers, rngs=rngs)
    if len(event_shape) != 2:
        raise ValueError(f"--model pixelcnn needs image data (an event shape (H, W)), got {event_shape}")
    return A.PixelCNN(tuple(event_shape), c.channels, c.layers, gated=c.gated, rngs=rngs)
