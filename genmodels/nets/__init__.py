"""Networks (flax.nnx): raw F(x, noise_cond, labels=None) to wrap in ``gm.models`` (EDM preconditioning or
a path's own parameterisation)."""

from genmodels.nets._embedding import NoiseEmbedding as NoiseEmbedding
from genmodels.nets._embedding import sinusoidal_embedding as sinusoidal_embedding
from genmodels.nets._mlp import MLP as MLP
from genmodels.nets._unet import UNet as UNet
