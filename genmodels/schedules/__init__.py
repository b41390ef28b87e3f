"""Noise schedules: descending sigma arrays in the k-diffusion convention (``_grids.py``), and schedules
fitted to a sampler at a fixed budget of model evaluations (``_fit.py``: ``fit``, which drives the samplers
and so sits one layer below the grids)."""

from genmodels.schedules._fit import ScheduleFit as ScheduleFit
from genmodels.schedules._fit import endpoint_error as endpoint_error
from genmodels.schedules._fit import fit as fit
from genmodels.schedules._fit import reference_endpoint as reference_endpoint
from genmodels.schedules._fit import sampler_nfe as sampler_nfe
from genmodels.schedules._fit import steps_for_nfe as steps_for_nfe
from genmodels.schedules._grids import append_zero as append_zero
from genmodels.schedules._grids import karras as karras
from genmodels.schedules._grids import log_uniform as log_uniform
from genmodels.schedules._grids import uniform_t as uniform_t
