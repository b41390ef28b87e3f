"""Issue 9's bad files: each is a clear error naming the file, and nothing written before is lost.

Data files (a non-zip ``.npz``, one without the arrays or of non-binary values, a missing path), a garbled
``config.json`` on ``--resume`` through the experiment scripts, and a checkpoint whose arrays have other
shapes than the model's (same count). The run-directory cases that need training or a second process (the
lock, Ctrl-C during writes, a resume whose checkpoints are gone, binary_density into a finished run) are in
``test_run_directory.py``, ``test_train.py`` and ``test_experiments_cli.py``; ``/work/notes/issue9_cases.md``
maps every case to its test. Nothing here trains: the scripts are refused before JAX work.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import genmodels as gm
from genmodels.data._binary import load_binary_npz
from genmodels.errors import ArgumentError, CheckpointError, GenmodelsError


def files_of(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def splits(**override) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    data = {k: (rng.random((n, 6)) < 0.3).astype(np.float32) for k, n in (("train_data", 8), ("valid_data", 4),
                                                                         ("test_data", 4))}  # fmt: skip
    return {**data, **override}


@pytest.fixture
def bad_npz(tmp_path) -> dict[str, Path]:
    """Data files that are not what a binary data file must be."""
    (tmp_path / "text.npz").write_text("train_data,valid_data,test_data\n0,1,0\n")  # not a zip
    np.save(tmp_path / "array.npy", np.zeros((4, 6)))
    (tmp_path / "array.npy").rename(tmp_path / "npy-as.npz")  # a single .npy under an .npz name
    np.savez(tmp_path / "missing.npz", train=np.zeros((4, 6)))
    np.savez(tmp_path / "grey.npz", **splits(valid_data=np.full((4, 6), 0.5)))
    np.savez(tmp_path / "dims.npz", **splits(test_data=np.zeros((4, 5))))
    return {p.stem: p for p in tmp_path.glob("*.npz")}


@pytest.mark.parametrize(
    "name, words",
    [("text", ["not an .npz archive", "numpy.savez"]), ("npy-as", ["not an .npz archive"]),
     ("missing", ["missing array(s)", "train_data", "found ['train']"]), ("grey", ["valid_data", "binary", "0.5"]),
     ("dims", ["2-D (N, D) with one D", "(4, 5)"])],
)  # fmt: skip
def test_bad_data_file_is_an_error_naming_it(bad_npz, name, words):
    """numpy said "pickled data" of a non-zip .npz; now the library names the file and what it needs."""
    with pytest.raises(ArgumentError) as err:
        load_binary_npz(bad_npz[name])
    assert str(bad_npz[name]) in str(err.value) and all(w in str(err.value) for w in words), str(err.value)


def test_missing_data_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no.npz.*train_data"):
        load_binary_npz(tmp_path / "no.npz")


@pytest.mark.parametrize("name", ["text", "missing", "grey"])
def test_binary_density_refuses_a_bad_file_before_touching_out(bad_npz, tmp_path, capsys, name):
    """Its argument errors were tracebacks after an empty --out was made: now a command-line error (exit 2)
    naming the file, and --out does not exist."""
    from experiments import binary_density

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as err:
        binary_density.main(["--model", "fvsbn", "--dataset", "npz", "--data-path", str(bad_npz[name]),
                             "--steps", "2", "--out", str(out)])  # fmt: skip
    assert err.value.code == 2 and str(bad_npz[name]) in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("script", ["toy2d", "binary_density"])
def test_garbled_config_on_resume_names_the_file_and_keeps_it(tmp_path, capsys, script):
    """A garbled config.json on --resume was a bare JSONDecodeError that named no file."""
    import importlib

    module = importlib.import_module(f"experiments.{script}")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"steps": 4,')
    (run / "metrics.jsonl").write_text('{"step": 0, "event": "start"}\n')
    before = files_of(run)
    argv = ["--family", "edm", "--dataset", "moons"] if script == "toy2d" else ["--model", "fvsbn"]
    with pytest.raises(SystemExit) as err:
        module.main([*argv, "--steps", "4", "--resume", "--out", str(run)])
    message = capsys.readouterr().err
    assert err.value.code == 2 and str(run / "config.json") in message and "not valid JSON" in message, message
    assert files_of(run) == before


def test_checkpoint_of_other_shapes_names_the_array(tmp_path):
    """A checkpoint of as many arrays as the model but other shapes said "holds 29 arrays, ... need 29"; the
    error names the first array that differs with both shapes, and the checkpoint is left as it was."""
    saved = {"w": jnp.ones((3, 4)), "b": jnp.zeros(4)}
    ckpt = gm.train.Checkpointer(tmp_path / "checkpoints")
    ckpt.save(5, saved, {"note": "kept"})
    before = files_of(tmp_path / "checkpoints")
    for like, words in [({"w": jnp.ones((3, 8)), "b": jnp.zeros(4)}, ["['w']", "(3, 4)", "(3, 8)"]),
                        ({"w": jnp.ones((3, 4), jnp.int32), "b": jnp.zeros(4)}, ["['w']", "float32", "int32"]),
                        ({"v": jnp.ones((3, 4)), "b": jnp.zeros(4)}, ["['w']", "['v']"])]:  # fmt: skip
        with pytest.raises(CheckpointError) as err:
            ckpt.restore(5, like)
        message = str(err.value)
        assert str(tmp_path / "checkpoints" / "5") in message and all(w in message for w in words), message
        assert isinstance(err.value, GenmodelsError) and isinstance(err.value, ValueError)
    tree, meta = ckpt.restore(5, saved)  # still whole
    assert meta == {"note": "kept"} and bool(jnp.all(tree["w"] == 1))
    ckpt.close()
    assert files_of(tmp_path / "checkpoints") == before
