"""Samplers: immutable pytrees driven by ``gm.sample`` / ``gm.solve``. Every exported concrete sampler is
parametrised over by the test suite."""

from genmodels.samplers._base import (
    AbstractDenoiserSampler as AbstractDenoiserSampler,
    AbstractSampler as AbstractSampler,
    AbstractStepSampler as AbstractStepSampler,
    Denoiser as Denoiser,
    Solution as Solution,
)
from genmodels.samplers._euler import Euler as Euler
from genmodels.samplers._heun import Heun as Heun
