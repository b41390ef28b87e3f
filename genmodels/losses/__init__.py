"""Training losses: pure functions ``loss(model, batch, key, **options) -> (loss, metrics)`` -- a scalar
and a dict of scalar metrics (with ``"loss"``), always -- usable as a trainer ``loss_fn`` through
``functools.partial``. Each loss asks for the ``gm.protocols`` model it trains and refuses another kind
with a ``gm.errors.ProtocolError`` (plain callables are taken at their word; see ``_common``). Options
are values: couplings, noise distributions, weightings, ``gm.denoisers`` parameterizations; numbers in
them are traced leaves. ``reduction`` ("mean" | "sum") and ``projection`` are static ``Literal`` names.

* denoising score matching: :func:`dsm_loss` composed from a noise distribution (:class:`LogNormal`,
  :class:`LogUniform`, :class:`Ladder`, :class:`PathTime`) and a weighting (:class:`EDMWeighting`,
  :class:`SigmaSquaredScore`, :class:`LikelihoodWeighting`, :class:`Constant`); presets
  :func:`edm_loss`, :func:`vp_loss`, :func:`ve_loss`, :func:`ncsn_loss` (:func:`ncsn_sigmas`);
* score matching without denoising: :func:`ssm_loss` (SSM, SSM-VR), :func:`exact_score_matching_loss`;
* flow matching: :func:`path_loss` (any path, the target of the model's parameterization value),
  :func:`cfm_loss` (I-CFM, rectified flow), :func:`ot_cfm_loss` with a coupling
  (:class:`SinkhornCoupling`, :class:`ExactCoupling`; :func:`sinkhorn`, :func:`assignment`), reflow
  (:func:`reflow_pairs`, :func:`reflow_loss`, :func:`straightness`);
* classifier-free guidance training: :func:`drop_labels`, :func:`with_label_dropout`.

A model with a learned loss weighting (``gm.protocols.HasLearnedWeighting``, EDM2) is trained by the
denoising losses on exp(-u(sigma)) L + u(sigma) per row.
"""

from genmodels.losses._cfg import drop_labels as drop_labels
from genmodels.losses._cfg import with_label_dropout as with_label_dropout
from genmodels.losses._common import (
    LossAndMetrics as LossAndMetrics,
)
from genmodels.losses._common import (
    Reduction as Reduction,
)
from genmodels.losses._common import (
    split_batch as split_batch,
)
from genmodels.losses._dsm import (
    dsm_loss as dsm_loss,
)
from genmodels.losses._dsm import (
    edm_loss as edm_loss,
)
from genmodels.losses._dsm import (
    ncsn_loss as ncsn_loss,
)
from genmodels.losses._dsm import (
    ve_loss as ve_loss,
)
from genmodels.losses._dsm import (
    vp_loss as vp_loss,
)
from genmodels.losses._flow import (
    cfm_loss as cfm_loss,
)
from genmodels.losses._flow import (
    ot_cfm_loss as ot_cfm_loss,
)
from genmodels.losses._flow import (
    path_loss as path_loss,
)
from genmodels.losses._flow import (
    reflow_loss as reflow_loss,
)
from genmodels.losses._flow import (
    reflow_pairs as reflow_pairs,
)
from genmodels.losses._flow import (
    straightness as straightness,
)
from genmodels.losses._noise import (
    AbstractNoise as AbstractNoise,
)
from genmodels.losses._noise import (
    Constant as Constant,
)
from genmodels.losses._noise import (
    EDMWeighting as EDMWeighting,
)
from genmodels.losses._noise import (
    Ladder as Ladder,
)
from genmodels.losses._noise import (
    LikelihoodWeighting as LikelihoodWeighting,
)
from genmodels.losses._noise import (
    LogNormal as LogNormal,
)
from genmodels.losses._noise import (
    LogUniform as LogUniform,
)
from genmodels.losses._noise import (
    PathTime as PathTime,
)
from genmodels.losses._noise import (
    SigmaSquaredScore as SigmaSquaredScore,
)
from genmodels.losses._noise import (
    ncsn_sigmas as ncsn_sigmas,
)
from genmodels.losses._ot import (
    AbstractCoupling as AbstractCoupling,
)
from genmodels.losses._ot import (
    ExactCoupling as ExactCoupling,
)
from genmodels.losses._ot import (
    SinkhornCoupling as SinkhornCoupling,
)
from genmodels.losses._ot import (
    assignment as assignment,
)
from genmodels.losses._ot import (
    sinkhorn as sinkhorn,
)
from genmodels.losses._ot import (
    squared_distances as squared_distances,
)
from genmodels.losses._score import (
    Projection as Projection,
)
from genmodels.losses._score import (
    exact_score_matching_loss as exact_score_matching_loss,
)
from genmodels.losses._score import (
    ssm_loss as ssm_loss,
)
