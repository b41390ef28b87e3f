"""genmodels: generative-modeling research in JAX.

Autoregressive models, score matching, EDM diffusion and flow matching behind one compiled sampler
interface::

    import genmodels as gm
    x0 = gm.sample(model, sampler, key, shape)
    lp = gm.log_prob(model, x, key)
"""

from genmodels import autoregressive as autoregressive
from genmodels import classifier_metric as classifier_metric
from genmodels import data as data
from genmodels import denoisers as denoisers
from genmodels import errors as errors
from genmodels import guidance as guidance
from genmodels import likelihood as likelihood
from genmodels import losses as losses
from genmodels import metrics as metrics
from genmodels import models as models
from genmodels import nets as nets
from genmodels import paths as paths
from genmodels import protocols as protocols
from genmodels import samplers as samplers
from genmodels import schedules as schedules
from genmodels import targets as targets
from genmodels import train as train
from genmodels.likelihood import bits_per_dim as bits_per_dim
from genmodels.likelihood import log_prob as log_prob
from genmodels.samplers._driver import sample as sample
from genmodels.samplers._driver import solve as solve

__version__ = "0.2.0"
