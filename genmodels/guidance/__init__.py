"""Guidance at sampling time: wrappers that turn conditional models into a denoiser for ``gm.sample``.

* :class:`ClassifierFree` -- D(x) + w (D(x | y) - D(x)) (Ho & Salimans 2022);
* :class:`Autoguidance` -- D_0(x | y) + w (D_1(x | y) - D_0(x | y)), a good model D_1 guided by a weaker
  version D_0 of itself (Karras et al. 2024);
* :class:`GuidanceInterval` -- either of them guides only for lo <= sigma <= hi (Kynkaanniemi et al. 2024)
  and skips the second network evaluation elsewhere.

Every wrapper is a ``gm.protocols.HasEvaluationCount``, so ``Solution.nfe`` counts network evaluations.
"""

from genmodels.guidance._autoguidance import Autoguidance as Autoguidance
from genmodels.guidance._base import AbstractGuidance as AbstractGuidance
from genmodels.guidance._cfg import ClassifierFree as ClassifierFree
from genmodels.guidance._interval import GuidanceInterval as GuidanceInterval
from genmodels.models._conditioning import with_labels as with_labels
