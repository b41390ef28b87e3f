"""Gaussian paths x_t = s(t) (x0 + sigma(t) eps): VE, VP, SubVP, EDM, Linear, Cosine."""

from genmodels.paths._base import AbstractPath as AbstractPath
from genmodels.paths._diffusion import EDM as EDM
from genmodels.paths._diffusion import VE as VE
from genmodels.paths._diffusion import VP as VP
from genmodels.paths._diffusion import SubVP as SubVP
from genmodels.paths._flow import Cosine as Cosine
from genmodels.paths._flow import Linear as Linear
