"""Gaussian paths x_t = s(t) (x0 + sigma(t) eps): VE, VP, SubVP, EDM, Linear, Cosine."""

from genmodels.paths._base import AbstractPath as AbstractPath
from genmodels.paths._diffusion import EDM as EDM, VE as VE, VP as VP, SubVP as SubVP
from genmodels.paths._flow import Cosine as Cosine, Linear as Linear
