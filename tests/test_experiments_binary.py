"""Smoke test of experiments/binary_density.py and binary_table.py: a short MADE mask-ensemble run on the
8x8 digits writes its results and pictures, the table script reads it, a finished run directory is not
overwritten, a resumed run ends where an uninterrupted one does, and a bad dataset file is refused."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from experiments import binary_density, binary_table

RUN = ["--model", "made", "--dataset", "digits", "--hidden", "16", "--num-masks", "4", "--order-agnostic",
       "--steps", "20", "--validate-every", "10", "--checkpoint-every", "10", "--steps-per-call", "5"]  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("binary") / "made"
    binary_density.main(RUN + ["--out", str(out)])
    return out, json.loads((out / "results.json").read_text())


def test_results_and_files(finished):
    out, res = finished
    assert res["model"] == "made" and res["dataset"] == "digits" and res["steps"] == 20
    for name in ("test_nll_nats", "valid_nll_nats", "train_nll_nats", "test_nll_single_mask_nats"):
        assert math.isfinite(res[name]) and 0 < res[name] < 64 * math.log(2) * 1.5, name
    assert res["nll_kind"].startswith("MADE ensemble of 4 masks")
    assert len(res["params_digest"]) == 64 and "code_version" in res
    assert "1297 train / 250 valid / 250 test" in res["data"]
    for name in ("samples.png", "completions.png"):
        assert (out / name).stat().st_size > 500, name
    assert sorted(int(p.name) for p in (out / "checkpoints").iterdir()) == [10, 20]


def test_table_reads_the_run(finished, capsys):
    out, res = finished
    docs = out.parent / "doc.md"
    docs.write_text("# R\n<!-- binary-table:start -->\nPREVIOUS-TABLE\n<!-- binary-table:end -->\ntail\n")
    binary_table.main([str(out), "--docs", str(docs)])
    text = docs.read_text()
    assert "PREVIOUS-TABLE" not in text and text.endswith("tail\n")
    assert "ensemble of 4" in text and f"{res['test_nll_nats']:.2f}" in text


def test_finished_run_is_not_overwritten(finished, capsys):
    out, res = finished
    before = (out / "results.json").read_bytes()
    with pytest.raises(SystemExit):  # the run-directory rules of every experiment (common.prepare_run_dir)
        binary_density.main(RUN + ["--out", str(out)])
    assert "finished run" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before


def test_resume_matches_uninterrupted_run(finished, tmp_path):
    out, res = finished
    run = tmp_path / "made"
    shutil.copytree(out, run)
    shutil.rmtree(run / "checkpoints" / "20")  # as if killed after the checkpoint at step 10
    (run / "results.json").unlink()
    binary_density.main(RUN + ["--out", str(run), "--resume"])
    again = json.loads((run / "results.json").read_text())
    assert again["params_digest"] == res["params_digest"]
    assert again["test_nll_nats"] == pytest.approx(res["test_nll_nats"], rel=1e-6)


def test_dataset_file_without_the_arrays_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, train=np.zeros((4, 3)), valid=np.zeros((2, 3)))
    with pytest.raises(SystemExit):  # a command-line error, before --out is created
        binary_density.main(["--model", "fvsbn", "--dataset", "dna", "--data-path", str(bad), "--steps", "2",
                             "--out", str(tmp_path / "out")])  # fmt: skip
    assert "train_data" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()
