"""Analytic distributions with exact log_prob, score and denoiser at every noise level, and exact samples."""

from genmodels.targets._mixture import (
    DiagonalGaussian as DiagonalGaussian,
    GaussianMixture as GaussianMixture,
    eight_gaussians as eight_gaussians,
    grid_gaussians as grid_gaussians,
    random_mixture as random_mixture,
)
