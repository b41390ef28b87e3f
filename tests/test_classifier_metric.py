"""gm.classifier_metric: the Fréchet formula against closed forms for Gaussians, its numerical care with
singular covariances, the shipped fixed feature networks (held-out accuracy, package data, the wheel) and
the classifier-feature distance on real digits (self ~ 0, two real halves far closer than real vs noise)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

import genmodels as gm
from genmodels import classifier_metric as cm

fd = cm.frechet_distance


def _random_cov(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / (rank or d) + (0 if rank else 0.1) * np.eye(d)


def test_one_dimensional_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2
    for m1, s1, m2, s2 in [(0.0, 1.0, 0.0, 1.0), (1.5, 0.3, -2.0, 2.5), (0.2, 4.0, 0.2, 0.01)]:
        assert fd([m1], [[s1**2]], [m2], [[s2**2]]) == pytest.approx(
            (m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-10, abs=1e-12
        )


def test_commuting_covariances_closed_form():
    rng = np.random.default_rng(0)
    d = 7
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    c1, c2 = (q * a) @ q.T, (q * b) @ q.T  # same eigenvectors
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fd(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-9)


def test_non_commuting_two_by_two_closed_form():
    # for 2x2 SPD M: tr M^(1/2) = sqrt(tr M + 2 sqrt(det M)); with M = C1^(1/2) C2 C1^(1/2),
    # tr M = tr(C1 C2) and det M = det C1 det C2
    rng = np.random.default_rng(1)
    for _ in range(5):
        c1, c2 = _random_cov(rng, 2), _random_cov(rng, 2)
        assert not np.allclose(c1 @ c2, c2 @ c1)
        mu1, mu2 = rng.normal(size=2), rng.normal(size=2)
        tr_sqrt = np.sqrt(np.trace(c1 @ c2) + 2 * np.sqrt(np.linalg.det(c1) * np.linalg.det(c2)))
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * tr_sqrt
        assert fd(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_scaled_covariance_and_general_dimension():
    rng = np.random.default_rng(2)
    d = 20
    c = _random_cov(rng, d)
    mu = rng.normal(size=d)
    # N(mu, C) vs N(mu, k^2 C): W2^2 = (k - 1)^2 tr C
    for k in (0.5, 1.0, 3.0):
        assert fd(mu, c, mu, k**2 * c) == pytest.approx((k - 1) ** 2 * np.trace(c), rel=1e-9, abs=1e-9)
    # general pair: tr (C1^(1/2) C2 C1^(1/2))^(1/2) = sum sqrt(eig(C1 C2)) (an independent route)
    c1, c2 = _random_cov(rng, d), _random_cov(rng, d)
    tr_sqrt = np.sum(np.sqrt(np.linalg.eigvals(c1 @ c2).real))
    assert fd(mu, c1, 0 * mu, c2) == pytest.approx(mu @ mu + np.trace(c1) + np.trace(c2) - 2 * tr_sqrt, rel=1e-8)
    assert fd(mu, c1, 0 * mu, c2) == pytest.approx(fd(0 * mu, c2, mu, c1), rel=1e-9)  # symmetric


def test_singular_covariances_stay_accurate():
    # fewer samples than dimensions: rank-deficient fits, as with small sample sets of features
    rng = np.random.default_rng(3)
    d = 32
    x = rng.normal(size=(10, d))
    mu, c = cm.gaussian_fit(x)
    assert np.linalg.matrix_rank(c) < d
    assert 0.0 <= fd(mu, c, mu, c) < 1e-8 * np.trace(c)
    # two rank-1 covariances along orthogonal directions: W2^2 = a + b (nothing shared)
    e1, e2 = np.eye(d)[0], np.eye(d)[1]
    assert fd(np.zeros(d), 4.0 * np.outer(e1, e1), np.zeros(d), 9.0 * np.outer(e2, e2)) == pytest.approx(
        13.0, rel=1e-12
    )
    # and along the same direction: (2 - 3)^2
    assert fd(np.zeros(d), 4.0 * np.outer(e1, e1), np.zeros(d), 9.0 * np.outer(e1, e1)) == pytest.approx(1.0, rel=1e-9)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="covariances"):
        fd(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        fd(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="n >= 2"):
        cm.gaussian_fit(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="image_shape"):
        cm.DigitClassifier((8,), rngs=nnx.Rngs(0))
    clf = cm.DigitClassifier((28, 28), width=4, feature_dim=8, rngs=nnx.Rngs(0))
    assert cm.features(clf, np.zeros((3, 28, 28), np.float32)).shape == (3, 8)
    with pytest.raises(ValueError, match="expects images"):
        cm.features(clf, np.zeros((3, 8, 8, 1), np.float32))


MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def digits_classifier():
    x, y = gm.data.load_digits("NHWC")
    (xtr, ytr), (xte, yte) = gm.data.split((x, y), 1437, seed=0)  # the split of experiments/images.py
    return cm.feature_network("digits"), (xtr, ytr), (xte, yte)


def test_shipped_digits_network(digits_classifier):
    clf, _, (xte, yte) = digits_classifier
    info = cm.feature_network_info("digits")
    assert info["recipe"]["train_images"] == 1437 and info["script"] == "tools/train_fd_networks.py"
    acc = cm.accuracy(clf, xte, yte)
    assert acc >= 0.99 and acc == pytest.approx(info["float16_test_accuracy"], abs=1.5 / len(xte))
    assert cm.feature_network("digits") is not clf  # a fresh module per call (the file is read once)


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"the MNIST test digits are not at {MNIST}")
def test_shipped_mnist_network():
    x, y = gm.data.load_mnist(MNIST, "t10k", "NHWC")
    _, (xte, yte) = gm.data.split((x, y), 8000, seed=0)  # FD is computed on these 2,000 held-out digits
    info = cm.feature_network_info("mnist")
    assert info["recipe"]["train_images"] == 8000
    acc = cm.accuracy(cm.feature_network("mnist"), xte, yte)
    assert acc >= 0.985 and acc == pytest.approx(info["float16_test_accuracy"], abs=1.5 / len(xte))


def test_feature_network_refuses_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="feature network"):
        cm.feature_network("cifar")
    with pytest.raises(ValueError, match="feature network"):
        cm.feature_network(tmp_path / "nothing.npz")


def test_weights_are_package_data():
    # the weight files are small and declared as package data (the wheel itself: test_wheel_contains_weights)
    for name in cm.NETWORKS:
        assert (cm.WEIGHTS / f"{name}.npz").stat().st_size < 2_000_000
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"_weights/*.npz"' in text


def test_wheel_contains_weights(tmp_path):
    # a non-editable wheel, built from a copy of the checkout (setuptools writes build/ beside the sources)
    pytest.importorskip("setuptools", reason="--no-build-isolation builds with the environment's setuptools")
    repo = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".venv", ".git", "runs", "build", "site", "*.egg-info", "__pycache__", ".*cache*")
    shutil.copytree(repo, src, ignore=skip)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    subprocess.run(cmd, check=True, capture_output=True, cwd=src, timeout=600)
    (wheel,) = tmp_path.glob("genmodels-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"genmodels/_weights/{n}.npz" for n in cm.NETWORKS} <= names


def test_train_classifier_learns(digits_classifier):
    _, (xtr, ytr), (xte, yte) = digits_classifier
    clf = cm.train_classifier(xtr, ytr, key=jax.random.key(0), steps=150, batch_size=64, width=8, feature_dim=32,
                              lr=3e-3)  # fmt: skip
    assert cm.accuracy(clf, xte, yte) > 0.8  # chance is 0.1


def test_classifier_frechet_distance_on_real_digits(digits_classifier):
    clf, (xtr, _), (xte, _) = digits_classifier
    assert cm.classifier_frechet_distance(clf, xte, xte) < 1e-6
    half = len(xtr) // 2
    real_vs_real = cm.classifier_frechet_distance(clf, xtr[:half], xtr[half : 2 * half])
    noise = np.random.default_rng(0).uniform(-1, 1, size=xtr[:half].shape).astype(np.float32)
    real_vs_noise = cm.classifier_frechet_distance(clf, xtr[:half], noise)
    assert real_vs_real < 0.1 * real_vs_noise
    # a mild corruption sits in between: halving the contrast of one half moves it away from the other
    faded = cm.classifier_frechet_distance(clf, xtr[:half], 0.5 * xtr[half : 2 * half] - 0.5)
    assert real_vs_real < faded < real_vs_noise
