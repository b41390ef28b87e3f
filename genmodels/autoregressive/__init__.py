"""Autoregressive models over binary data (flax.nnx), with exact ``log_prob`` in nats and ancestral
sampling through ``gm.sample(model, gm.samplers.Ancestral(), key, (batch, *event_shape))``."""

from genmodels._checks import check_binary as check_binary
from genmodels.autoregressive._base import (
    AbstractAutoregressive as AbstractAutoregressive,
)
from genmodels.autoregressive._base import (
    bernoulli_log_prob as bernoulli_log_prob,
)
from genmodels.autoregressive._base import (
    nll_loss as nll_loss,
)
from genmodels.autoregressive._complete import complete as complete
from genmodels.autoregressive._fvsbn import FVSBN as FVSBN
from genmodels.autoregressive._fvsbn import NADE as NADE
from genmodels.autoregressive._made import MADE as MADE
from genmodels.autoregressive._pixelcnn import PixelCNN as PixelCNN
from genmodels.autoregressive._pixelcnn import causal_mask as causal_mask
from genmodels.autoregressive._transformer import Transformer as Transformer
