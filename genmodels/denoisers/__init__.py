"""Denoisers D(x, sigma) = E[x0 | x0 + sigma eps]: parameterizations as values, adapters from them and
from plain callables, conversions back, and EDM preconditioning."""

from genmodels.denoisers._convert import (
    CallableDenoiser as CallableDenoiser,
    PathDenoiser as PathDenoiser,
    as_denoiser as as_denoiser,
    eps_from_denoised as eps_from_denoised,
    from_eps as from_eps,
    from_score as from_score,
    from_v as from_v,
    from_velocity as from_velocity,
    score_from_denoised as score_from_denoised,
    v_from_denoised as v_from_denoised,
    velocity_from_denoised as velocity_from_denoised,
)
from genmodels.denoisers._parameterization import (
    AbstractParameterization as AbstractParameterization,
    DefinesLimit as DefinesLimit,
    Eps as Eps,
    Score as Score,
    V as V,
    Velocity as Velocity,
    X0 as X0,
)
from genmodels.denoisers._precond import (
    AbstractPreconditioning as AbstractPreconditioning,
    EDMPrecond as EDMPrecond,
    IDDPMPrecond as IDDPMPrecond,
    Preconditioned as Preconditioned,
    VEPrecond as VEPrecond,
    VPPrecond as VPPrecond,
    iddpm_sigmas as iddpm_sigmas,
    precondition as precondition,
)
