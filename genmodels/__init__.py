"""genmodels: generative-modeling research in JAX.

Autoregressive models, score matching, EDM diffusion and flow matching behind one compiled sampler
interface::

    import genmodels as gm
    x0 = gm.sample(model, sampler, key, shape)
    lp = gm.log_prob(model, x, key)
"""

from genmodels import denoisers as denoisers, paths as paths, samplers as samplers, schedules as schedules
from genmodels import classifier_metric as classifier_metric, metrics as metrics, targets as targets
from genmodels import autoregressive as autoregressive
from genmodels import errors as errors, protocols as protocols
from genmodels import data as data, train as train
from genmodels import guidance as guidance, losses as losses, models as models, nets as nets
from genmodels.samplers._driver import sample as sample, solve as solve
from genmodels import likelihood as likelihood
from genmodels.likelihood import bits_per_dim as bits_per_dim, log_prob as log_prob

__version__ = "0.2.0"
