"""genmodels.data: keyed datasets (determinism, epoch coverage), 2-D toys, digits, MNIST IDX, bad inputs."""

import gzip
import hashlib
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genmodels as gm
from genmodels.data import ArrayDataset, DataFormatError, SampledDataset

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
MNIST_MD5 = {  # from shared/data/README.md
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


# ----------------------------------------------------------------------------------------------- datasets
def test_array_dataset_is_pure_in_key_and_step():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20, dtype=np.int32)
    ds = ArrayDataset((x, y), batch_size=6)
    key = jax.random.key(3)
    a = ds.batch(key, 7)
    b = jax.jit(lambda k, s: ds.batch(k, s))(key, jnp.int32(7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], x[np.asarray(a[1])])  # rows stay paired across leaves
    c = ds.batch(jax.random.key(4), 7)
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("n,b,drop_last", [(50, 8, True), (50, 8, False), (48, 8, True)])
def test_epoch_permutation_covers_each_example_once(n, b, drop_last):
    ds = ArrayDataset(np.arange(n, dtype=np.float32), batch_size=b, drop_last=drop_last)
    key = jax.random.key(0)
    m = ds.steps_per_epoch
    assert m == (n // b if drop_last else math.ceil(n / b))
    for epoch in range(2):
        idx = np.concatenate([np.asarray(ds.indices(key, epoch * m + i)) for i in range(m)])
        if drop_last:
            assert len(np.unique(idx)) == len(idx) == m * b  # each example at most once
        else:
            assert set(idx.tolist()) == set(range(n))  # each example at least once
            assert len(np.unique(idx[:n])) == n  # the first N slots are the permutation itself
        if epoch == 0:
            first = idx
    assert not np.array_equal(first, idx)  # reshuffled per epoch


def test_sampled_dataset_uses_fold_in():
    fn = gm.data.toy("moons")
    ds = SampledDataset(fn, 32)
    key = jax.random.key(1)
    np.testing.assert_array_equal(ds.batch(key, 5), fn(jax.random.fold_in(key, 5), 32))
    assert not np.array_equal(ds.batch(key, 5), ds.batch(key, 6))


def test_dataset_bad_inputs():
    with pytest.raises(ValueError, match="leading"):
        ArrayDataset((np.zeros((5, 2)), np.zeros(4)), batch_size=2)
    with pytest.raises(ValueError, match="NaN or inf"):
        ArrayDataset(np.array([[0.0], [np.nan]]), batch_size=1)
    with pytest.raises(ValueError, match="empty"):
        ArrayDataset(np.zeros((0, 3)), batch_size=1)
    with pytest.raises(ValueError, match="exceeds"):
        ArrayDataset(np.zeros((3, 2)), batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        ArrayDataset(np.zeros((3, 2)), batch_size=0)
    with pytest.raises(ValueError, match="at least one array"):
        ArrayDataset({}, batch_size=1)
    with pytest.raises(TypeError, match="callable"):
        SampledDataset(np.zeros(3), 4)
    with pytest.raises(ValueError, match="rows"):
        SampledDataset(lambda key, n: jnp.zeros((n + 1, 2)), 4).batch(jax.random.key(0), 0)


# ------------------------------------------------------------------------------------------------- toys
@pytest.mark.parametrize("name", sorted(gm.data.TOYS))
def test_toy_shape_and_normalisation(name):
    """Documented normalisation: exact mean 0 and E|x|^2 = 2 (mean per-coordinate variance 1)."""
    n = 40_000
    x = jax.jit(gm.data.toy(name), static_argnums=1)(jax.random.key(0), n)
    assert x.shape == (n, 2) and x.dtype == jnp.float32
    x = np.asarray(x, dtype=np.float64)
    assert np.all(np.isfinite(x))
    se = np.sqrt((x**2).sum(1).var() / n)  # standard error of the second moment
    assert abs((x**2).sum(1).mean() - 2.0) < 5 * se + 1e-3
    assert np.all(np.abs(x.mean(0)) < 5 * x.std(0) / np.sqrt(n))
    ds = gm.data.toy_dataset(name, 16)
    assert jax.jit(lambda k: ds.batch(k, 0))(jax.random.key(1)).shape == (16, 2)


def test_toy_structure():
    key = jax.random.key(2)
    sample = jax.jit(lambda name, k: gm.data.toy(name)(k, 5000), static_argnums=0)
    # checkerboard: undo the scale sqrt(3)/2; the cell (i, j) of each point has i + j even
    cb = np.asarray(sample("checkerboard", key)) / (math.sqrt(3) / 2) + 2.0
    cells = np.floor(cb).astype(int)
    assert np.all((cells.sum(1) % 2) == 0) and cells.min() >= 0 and cells.max() <= 3
    # circles: radii 1 and 1/2 (ratio 2) up to noise
    r = np.linalg.norm(np.asarray(sample("circles", key)), axis=1)
    inner, outer = r[r < r.mean()], r[r >= r.mean()]
    assert abs(outer.mean() / inner.mean() - 2.0) < 0.05
    # 8gaussians: exactly the analytic target; every sample is near one of the 8 means
    target = gm.data.toy_target("8gaussians")
    x = sample("8gaussians", key)
    np.testing.assert_allclose(x, jax.jit(lambda k: target.sample(k, 5000))(key), rtol=1e-6)
    d = np.linalg.norm(np.asarray(x)[:, None] - np.asarray(target.means)[None], axis=-1).min(1)
    assert d.max() < 6 * float(target.stds.max())


def test_toy_bad_names_and_targets():
    with pytest.raises(ValueError, match="unknown toy"):
        gm.data.toy("banana")
    with pytest.raises(ValueError, match="8gaussians"):
        gm.data.toy_target("moons")
    with pytest.raises(TypeError, match="sample"):
        gm.data.target_dataset(object(), 4)
    mix = gm.targets.random_mixture(jax.random.key(0), dim=3)
    ds = gm.data.target_dataset(mix, 8)
    assert jax.jit(lambda k: ds.batch(k, 2))(jax.random.key(1)).shape == (8, 3)


# ---------------------------------------------------------------------------------------------- images
def test_digits_loader():
    from sklearn.datasets import load_digits as sk

    x, y = gm.data.load_digits()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32 and y.shape == (1797,) and y.dtype == np.int32
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_allclose(x, sk().images / 16.0 * 2 - 1, atol=1e-6)
    assert sorted(set(y.tolist())) == list(range(10))
    assert gm.data.load_digits("NHWC", return_labels=False).shape == (1797, 8, 8, 1)
    assert gm.data.load_digits("NCHW")[0].shape == (1797, 1, 8, 8)
    with pytest.raises(ValueError, match="layout"):
        gm.data.load_digits("HWC")


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST IDX files not present at {MNIST}")
def test_mnist_real_files(tmp_path):
    for name, md5 in MNIST_MD5.items():
        assert _md5(MNIST / name) == md5, f"{name} differs from the documented file"
    x, y = gm.data.load_mnist(MNIST)
    assert x.shape == (10_000, 28, 28) and x.dtype == np.float32 and y.shape == (10_000,)
    assert x.min() == -1.0 and x.max() == 1.0
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels
    assert np.bincount(y).tolist()[:2] == [980, 1135] and np.bincount(y).sum() == 10_000
    raw = gm.data.read_idx(MNIST / "t10k-images-idx3-ubyte.gz")
    assert raw.shape == (10_000, 28, 28) and raw.dtype == np.uint8
    np.testing.assert_allclose(x, raw / 255.0 * 2 - 1, atol=1e-6)
    # the same files uncompressed (raw IDX) give the same arrays
    for name in MNIST_MD5:
        (tmp_path / name[:-3]).write_bytes(gzip.decompress((MNIST / name).read_bytes()))
    x2, y2 = gm.data.load_mnist(tmp_path, layout="NHWC")
    np.testing.assert_array_equal(x2[..., 0], x)
    np.testing.assert_array_equal(y2, y)


def _write_idx(path, array, *, dtype_byte=0x08, compress=False):
    header = bytes([0, 0, dtype_byte, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def test_idx_errors(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 4, 4))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(5), compress=True)
    x, y = gm.data.load_mnist(tmp_path)  # small synthetic files, raw + gzip mixed
    np.testing.assert_allclose(x, imgs / 255.0 * 2 - 1, atol=1e-6)
    assert y.tolist() == [0, 1, 2, 3, 4]
    good = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(DataFormatError, match="magic"):
        gm.data.read_idx(bad)
    bad.write_bytes(good[:-7])
    with pytest.raises(DataFormatError, match="size mismatch"):
        gm.data.read_idx(bad)
    bad.write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(DataFormatError, match="gzip"):
        gm.data.read_idx(bad)
    bad.write_bytes(b"")
    with pytest.raises(DataFormatError, match="empty"):
        gm.data.read_idx(bad)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        gm.data.load_mnist(tmp_path, split="train")
    with pytest.raises(FileNotFoundError, match="MNIST folder not found"):
        gm.data.load_mnist(tmp_path / "nowhere")
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(4), compress=True)
    with pytest.raises(DataFormatError, match="labels"):
        gm.data.load_mnist(tmp_path)


def test_binarize():
    x = jnp.array([[-1.0, -0.2, 0.0, 0.2, 1.0]])
    np.testing.assert_array_equal(gm.data.binarize(x), [[0, 0, 0, 1, 1]])
    p = jnp.full((20_000,), 0.3) * 2 - 1  # intensity 0.3
    b = gm.data.binarize(p, jax.random.key(0))
    assert set(np.unique(b).tolist()) <= {0.0, 1.0}
    assert abs(float(b.mean()) - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 20_000)
    np.testing.assert_array_equal(b, gm.data.binarize(p, jax.random.key(0)))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        gm.data.binarize(jnp.array([0.0, 2.0]))
    with pytest.raises(TypeError, match="floating"):
        gm.data.binarize(jnp.array([0, 1]))


def test_split_fixed_seed():
    x, y = np.arange(100.0).reshape(50, 2), np.arange(50)
    (xa, ya), (xb, yb) = gm.data.split((x, y), 40, seed=1)
    assert len(ya) == 40 and len(yb) == 10
    assert sorted(np.concatenate([ya, yb]).tolist()) == list(range(50))
    np.testing.assert_array_equal(xa, x[ya])
    (xa2, ya2), _ = gm.data.split((x, y), 40, seed=1)
    np.testing.assert_array_equal(ya, ya2)
    assert not np.array_equal(ya, gm.data.split((x, y), 40, seed=2)[0][1])
    assert [len(p) for p in gm.data.split(y, (10, 20))] == [10, 20, 20]
    with pytest.raises(ValueError, match="sum"):
        gm.data.split(y, 60)
    with pytest.raises(ValueError, match="leading"):
        gm.data.split((x, y[:3]), 2)
