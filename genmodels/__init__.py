"""genmodels: generative-modeling research in JAX.

Autoregressive models, score matching, EDM diffusion and flow matching behind one compiled sampler
interface::

    import genmodels as gm
    x0 = gm.sample(model, sampler, key, shape)
    lp = gm.log_prob(model, x, key)
"""

from genmodels import denoisers as denoisers, paths as paths, samplers as samplers, schedules as schedules
from genmodels import metrics as metrics, targets as targets
from genmodels.samplers._driver import sample as sample, solve as solve

__version__ = "0.1.0"
