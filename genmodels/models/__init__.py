"""Trainable models that ``gm.sample`` takes directly: nnx Modules implementing the protocols of
``gm.protocols`` (re-exported here), e.g. ``denoise(x, sigma, labels=None)``.

* :class:`EDMModel` -- a network under EDM (or VP / VE / iDDPM) preconditioning.
* :class:`ScoreModel` -- a score network, s = F / sigma (NCSNv2).
* :class:`PathModel` -- a network predicting a ``gm.denoisers`` parameterization (``Eps()``, ``V()``,
  ``Score()``, ``Velocity()``, ``X0()``) in a path's own (x_t, t).
* :func:`with_labels` -- fixes the labels of a class-conditional model (see also ``gm.guidance``).
"""

from genmodels.models._common import denoise as denoise
from genmodels.models._common import score as score
from genmodels.models._conditioning import Conditioned as Conditioned
from genmodels.models._conditioning import with_labels as with_labels
from genmodels.models._edm import EDMModel as EDMModel
from genmodels.models._edm import ScoreModel as ScoreModel
from genmodels.models._path import PathModel as PathModel
from genmodels.models._path import velocity as velocity
from genmodels.protocols import (
    AbstractAutoregressiveModel as AbstractAutoregressiveModel,
)
from genmodels.protocols import (
    AbstractDenoiserModel as AbstractDenoiserModel,
)
from genmodels.protocols import (
    AbstractFlowMapModel as AbstractFlowMapModel,
)
from genmodels.protocols import (
    AbstractPathModel as AbstractPathModel,
)
from genmodels.protocols import (
    BlockScoring as BlockScoring,
)
from genmodels.protocols import (
    HasExactSamples as HasExactSamples,
)
from genmodels.protocols import (
    HasLearnedWeighting as HasLearnedWeighting,
)
from genmodels.protocols import (
    HasLimitAtInfinity as HasLimitAtInfinity,
)
from genmodels.protocols import (
    HasScore as HasScore,
)
from genmodels.protocols import (
    Incremental as Incremental,
)
from genmodels.protocols import (
    TakesSecondTime as TakesSecondTime,
)
