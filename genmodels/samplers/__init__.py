"""Samplers: immutable pytrees driven by ``gm.sample`` / ``gm.solve``. Every exported concrete sampler is
parametrised over by the test suite."""

from genmodels.samplers._adaptive import ODE as ODE
from genmodels.samplers._adaptive import SDE as SDE
from genmodels.samplers._ancestral import DDIM as DDIM
from genmodels.samplers._ancestral import EulerAncestral as EulerAncestral
from genmodels.samplers._autoregressive import Ancestral as Ancestral
from genmodels.samplers._base import (
    AbstractDenoiserSampler as AbstractDenoiserSampler,
)
from genmodels.samplers._base import (
    AbstractSampler as AbstractSampler,
)
from genmodels.samplers._base import (
    AbstractStepSampler as AbstractStepSampler,
)
from genmodels.samplers._base import (
    Denoiser as Denoiser,
)
from genmodels.samplers._base import (
    Solution as Solution,
)
from genmodels.samplers._deis import DEIS as DEIS
from genmodels.samplers._dpmpp_2m_sde import AbstractSolverType as AbstractSolverType
from genmodels.samplers._dpmpp_2m_sde import DPMSolverPP2MSDE as DPMSolverPP2MSDE
from genmodels.samplers._dpmpp_2m_sde import HeunType as HeunType
from genmodels.samplers._dpmpp_2m_sde import MidpointType as MidpointType
from genmodels.samplers._dpmpp_2s import DPMSolverPP2S as DPMSolverPP2S
from genmodels.samplers._dpmpp_3m import DPMSolverPP3M as DPMSolverPP3M
from genmodels.samplers._dpmsolver import AbstractDPMCoefficients as AbstractDPMCoefficients
from genmodels.samplers._dpmsolver import CorrectedCoefficients as CorrectedCoefficients
from genmodels.samplers._dpmsolver import DPMSolverPP2M as DPMSolverPP2M
from genmodels.samplers._dpmsolver import DPMSolverPP3MSDE as DPMSolverPP3MSDE
from genmodels.samplers._dpmsolver import PublishedCoefficients as PublishedCoefficients
from genmodels.samplers._euler import Euler as Euler
from genmodels.samplers._heun import Heun as Heun
from genmodels.samplers._ipndm import IPNDM as IPNDM
from genmodels.samplers._ipndm import IPNDMV as IPNDMV
from genmodels.samplers._langevin import AnnealedLangevin as AnnealedLangevin
from genmodels.samplers._lms import LMS as LMS
from genmodels.samplers._multistep import AbstractMultistepSampler as AbstractMultistepSampler
from genmodels.samplers._multistep import AbstractWarmStart as AbstractWarmStart
from genmodels.samplers._multistep import LowerOrderStart as LowerOrderStart
from genmodels.samplers._multistep import RungeKuttaStart as RungeKuttaStart
from genmodels.samplers._pc import PredictorCorrector as PredictorCorrector
from genmodels.samplers._restart import Restart as Restart
from genmodels.samplers._sde import EulerMaruyama as EulerMaruyama
from genmodels.samplers._unipc import BH1 as BH1
from genmodels.samplers._unipc import BH2 as BH2
from genmodels.samplers._unipc import UniPC as UniPC
