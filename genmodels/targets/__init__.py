"""Analytic distributions with exact log_prob, score and denoiser at every noise level, and exact samples."""

from genmodels.targets._mixture import (
    DiagonalGaussian as DiagonalGaussian,
)
from genmodels.targets._mixture import (
    GaussianMixture as GaussianMixture,
)
from genmodels.targets._mixture import (
    eight_gaussians as eight_gaussians,
)
from genmodels.targets._mixture import (
    grid_gaussians as grid_gaussians,
)
from genmodels.targets._mixture import (
    random_mixture as random_mixture,
)
