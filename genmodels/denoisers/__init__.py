"""Denoisers D(x, sigma) = E[x0 | x0 + sigma eps]: parameterizations as values, adapters from them and
from plain callables, conversions back, and EDM preconditioning."""

from genmodels.denoisers._convert import (
    CallableDenoiser as CallableDenoiser,
)
from genmodels.denoisers._convert import (
    PathDenoiser as PathDenoiser,
)
from genmodels.denoisers._convert import (
    as_denoiser as as_denoiser,
)
from genmodels.denoisers._convert import (
    eps_from_denoised as eps_from_denoised,
)
from genmodels.denoisers._convert import (
    from_eps as from_eps,
)
from genmodels.denoisers._convert import (
    from_score as from_score,
)
from genmodels.denoisers._convert import (
    from_v as from_v,
)
from genmodels.denoisers._convert import (
    from_velocity as from_velocity,
)
from genmodels.denoisers._convert import (
    score_from_denoised as score_from_denoised,
)
from genmodels.denoisers._convert import (
    v_from_denoised as v_from_denoised,
)
from genmodels.denoisers._convert import (
    velocity_from_denoised as velocity_from_denoised,
)
from genmodels.denoisers._parameterization import (
    X0 as X0,
)
from genmodels.denoisers._parameterization import (
    AbstractParameterization as AbstractParameterization,
)
from genmodels.denoisers._parameterization import (
    DefinesLimit as DefinesLimit,
)
from genmodels.denoisers._parameterization import (
    Eps as Eps,
)
from genmodels.denoisers._parameterization import (
    Score as Score,
)
from genmodels.denoisers._parameterization import (
    V as V,
)
from genmodels.denoisers._parameterization import (
    Velocity as Velocity,
)
from genmodels.denoisers._precond import (
    AbstractPreconditioning as AbstractPreconditioning,
)
from genmodels.denoisers._precond import (
    EDMPrecond as EDMPrecond,
)
from genmodels.denoisers._precond import (
    IDDPMPrecond as IDDPMPrecond,
)
from genmodels.denoisers._precond import (
    Preconditioned as Preconditioned,
)
from genmodels.denoisers._precond import (
    VEPrecond as VEPrecond,
)
from genmodels.denoisers._precond import (
    VPPrecond as VPPrecond,
)
from genmodels.denoisers._precond import (
    iddpm_sigmas as iddpm_sigmas,
)
from genmodels.denoisers._precond import (
    precondition as precondition,
)
