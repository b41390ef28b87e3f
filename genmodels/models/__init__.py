"""Trainable models that ``gm.sample`` takes directly: nnx Modules implementing the protocols of
``gm.protocols`` (re-exported here), e.g. ``denoise(x, sigma, labels=None)``.

* :class:`EDMModel` -- a network under EDM (or VP / VE / iDDPM) preconditioning.
* :class:`ScoreModel` -- a score network, s = F / sigma (NCSNv2).
* :class:`PathModel` -- a network predicting a ``gm.denoisers`` parameterization (``Eps()``, ``V()``,
  ``Score()``, ``Velocity()``, ``X0()``) in a path's own (x_t, t).
* :func:`with_labels` -- fixes the labels of a class-conditional model (see also ``gm.guidance``).
"""

from genmodels.models._common import denoise as denoise, score as score
from genmodels.models._conditioning import Conditioned as Conditioned, with_labels as with_labels
from genmodels.models._edm import EDMModel as EDMModel, ScoreModel as ScoreModel
from genmodels.models._path import PathModel as PathModel, velocity as velocity
from genmodels.protocols import (
    AbstractAutoregressiveModel as AbstractAutoregressiveModel,
    AbstractDenoiserModel as AbstractDenoiserModel,
    AbstractFlowMapModel as AbstractFlowMapModel,
    AbstractPathModel as AbstractPathModel,
    BlockScoring as BlockScoring,
    HasExactSamples as HasExactSamples,
    HasLearnedWeighting as HasLearnedWeighting,
    HasLimitAtInfinity as HasLimitAtInfinity,
    HasScore as HasScore,
    Incremental as Incremental,
    TakesSecondTime as TakesSecondTime,
)
