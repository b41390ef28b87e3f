"""Keyed, resumable datasets and offline loaders.

A dataset's batch at step ``s`` is a pure jittable function ``dataset.batch(key, s)``, so a resumed run
sees exactly the batches of an uninterrupted one. 2-D toys are generated on the fly; image loaders read
local files (scikit-learn's 8x8 digits, MNIST IDX) and return numpy arrays in [-1, 1], layout (N, H, W).
"""

from genmodels.data._dataset import (
    AbstractDataset as AbstractDataset,
    ArrayDataset as ArrayDataset,
    SampledDataset as SampledDataset,
    check_batch as check_batch,
)
from genmodels.data._images import (
    DataFormatError as DataFormatError,
    binarize as binarize,
    load_digits as load_digits,
    load_mnist as load_mnist,
    read_idx as read_idx,
    split as split,
)
from genmodels.data._toys import (
    TOYS as TOYS,
    target_dataset as target_dataset,
    toy as toy,
    toy_dataset as toy_dataset,
    toy_target as toy_target,
)

from genmodels.data._binary import (  # binary sets for the autoregressive models (another helper's module)
    UCI_BINARY as UCI_BINARY,
    BinarySplits as BinarySplits,
    binary_digits as binary_digits,
    binary_mnist as binary_mnist,
    load_binary_npz as load_binary_npz,
)
