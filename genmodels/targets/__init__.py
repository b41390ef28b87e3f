"""Analytic distributions with exact log_prob, score and denoiser at every noise level, and exact samples."""

from genmodels.targets._class_tree import (
    ClassMixture as ClassMixture,
)
from genmodels.targets._class_tree import (
    branching_tree as branching_tree,
)
from genmodels.targets._full_mixture import (
    FullGaussianMixture as FullGaussianMixture,
)
from genmodels.targets._full_mixture import (
    digits_mixture as digits_mixture,
)
from genmodels.targets._full_mixture import (
    full_mixture as full_mixture,
)
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
