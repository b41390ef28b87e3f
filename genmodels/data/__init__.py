"""Keyed, resumable datasets and offline loaders.

A dataset's batch at step ``s`` is a pure jittable function ``dataset.batch(key, s)``, so a resumed run
sees exactly the batches of an uninterrupted one. 2-D toys are generated on the fly; image loaders read
local files (scikit-learn's 8x8 digits, MNIST IDX) and return numpy arrays in [-1, 1], layout (N, H, W).
"""

from genmodels.data._binary import (  # binary sets for the autoregressive models (another helper's module)
    UCI_BINARY as UCI_BINARY,
)
from genmodels.data._binary import (
    BinarySplits as BinarySplits,
)
from genmodels.data._binary import (
    binary_digits as binary_digits,
)
from genmodels.data._binary import (
    binary_mnist as binary_mnist,
)
from genmodels.data._binary import (
    load_binary_npz as load_binary_npz,
)
from genmodels.data._dataset import (
    AbstractDataset as AbstractDataset,
)
from genmodels.data._dataset import (
    ArrayDataset as ArrayDataset,
)
from genmodels.data._dataset import (
    SampledDataset as SampledDataset,
)
from genmodels.data._dataset import (
    check_batch as check_batch,
)
from genmodels.data._images import (
    DataFormatError as DataFormatError,
)
from genmodels.data._images import (
    binarize as binarize,
)
from genmodels.data._images import (
    load_digits as load_digits,
)
from genmodels.data._images import (
    load_mnist as load_mnist,
)
from genmodels.data._images import (
    read_idx as read_idx,
)
from genmodels.data._images import (
    split as split,
)
from genmodels.data._toys import (
    TOYS as TOYS,
)
from genmodels.data._toys import (
    target_dataset as target_dataset,
)
from genmodels.data._toys import (
    toy as toy,
)
from genmodels.data._toys import (
    toy_dataset as toy_dataset,
)
from genmodels.data._toys import (
    toy_target as toy_target,
)
