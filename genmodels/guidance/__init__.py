"""Guidance at sampling time: wrappers that turn a conditional model into a denoiser for ``gm.sample``."""

from genmodels.guidance._cfg import ClassifierFree as ClassifierFree
from genmodels.models._conditioning import with_labels as with_labels
