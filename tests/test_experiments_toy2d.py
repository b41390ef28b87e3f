"""Smoke test of experiments/toy2d.py: a short run writes its results and pictures, a resumed run ends with
the parameters of an uninterrupted one, and bad options or run directories are refused before any work."""

from __future__ import annotations

import json
import shutil

import pytest

from experiments import toy2d

# a tiny network and evaluation: the test checks the plumbing, not the quality
FAST = ["--batch", "64", "--hidden", "32", "--depth", "2", "--n-eval", "256", "--n-test", "16",
        "--density-grid", "4", "--quiet", "--seed", "3"]  # fmt: skip
RUN = ["--family", "rectified", "--dataset", "moons", "--steps", "40", "--checkpoint-every", "10",
       "--reflow-pairs", "256", "--samplers", "euler-2"]  # fmt: skip
KEYS = {"family", "dataset", "config", "steps", "final_loss", "params_digest", "raw_params_digest", "swd",
        "swd_baseline", "swd_ratio", "mmd", "mmd_baseline", "nll", "nll_sigma_range", "samplers", "wall_time",
        "train_time", "straightness_before", "straightness_after", "few_step", "files"}  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy2d") / "run"
    results = toy2d.main(RUN + FAST + ["--out", str(out)])
    return out, results


def test_results_and_files(finished):
    out, results = finished
    on_disk = json.loads((out / "results.json").read_text())
    assert KEYS <= set(on_disk), KEYS - set(on_disk)
    assert on_disk["params_digest"] == results["params_digest"] and len(results["params_digest"]) == 64
    # rectified: 24 flow-matching steps then 16 reflow steps (reflow_fraction 0.4), each stage checkpointed
    assert results["steps"] == 40
    assert sorted(p.name for p in (out / "checkpoints").iterdir())[-1] == "24"
    assert (out / "reflow" / "checkpoints" / "16").is_dir()
    assert results["primary_sampler"] == "euler-2" and results["samplers"]["euler-2"]["nfe"] == 2
    for name in ("swd", "swd_baseline", "mmd", "nll", "straightness_before", "straightness_after"):
        assert isinstance(results[name], float) and results[name] == results[name], name  # finite, not None
    assert results["swd_baseline"] > 0 and results["swd_ratio"] == pytest.approx(
        results["swd"] / results["swd_baseline"]
    )
    assert set(results["few_step"]) == {"euler-1", "euler-2"}
    for name in ("samples.png", "density.png", "trajectories.png", "loss.png"):
        assert (out / name).stat().st_size > 1000, name
    assert json.loads((out / "config.json").read_text())["reflow_pairs"] == 256


def test_resume_continues_to_the_same_parameters(finished, tmp_path):
    out, results = finished
    # the state of the same run killed during the reflow stage, after its checkpoint at reflow step 10
    run = tmp_path / "run"
    shutil.copytree(out, run)
    shutil.rmtree(run / "reflow" / "checkpoints" / "16")
    for name in ("results.json", "samples.png", "density.png", "trajectories.png", "loss.png"):
        (run / name).unlink()
    with pytest.raises(SystemExit):  # an unfinished run is not restarted without --resume
        toy2d.main(RUN + FAST + ["--out", str(run)])
    resumed = toy2d.main(RUN + FAST + ["--out", str(run), "--resume"])
    assert resumed["params_digest"] == results["params_digest"]
    assert resumed["raw_params_digest"] == results["raw_params_digest"]
    assert resumed["swd"] == pytest.approx(results["swd"], rel=1e-5)


def _refused(argv, capsys, *words):
    with pytest.raises(SystemExit) as err:
        toy2d.parse_args(argv)
    assert err.value.code == 2
    message = capsys.readouterr().err
    for word in words:
        assert word in message, message
    return message


def test_bad_config_is_refused(tmp_path, capsys):
    base = ["--dataset", "moons", "--out", str(tmp_path / "x")]
    _refused(["--family", "gan"] + base, capsys, "--family", "invalid choice")
    _refused(["--family", "cfm", "--dataset", "mnist", "--out", str(tmp_path / "x")], capsys, "--dataset")
    _refused(["--family", "cfm", "--steps", "0"] + base, capsys, "--steps", ">= 1")
    _refused(["--family", "cfm", "--lr", "-1"] + base, capsys, "--lr")
    _refused(["--family", "cfm", "--ema-decay", "1.5"] + base, capsys, "--ema-decay")
    _refused(["--family", "cfm", "--samplers", "magic"] + base, capsys, "unknown sampler", "magic")
    _refused(["--family", "cfm", "--reflow-pairs", "100"] + base, capsys, "only applies to --family rectified")
    _refused(["--family", "rectified", "--steps", "1"] + base, capsys, "no steps")
    _refused(["--family", "cfm", "--resume", "--overwrite"] + base, capsys, "not allowed with")
    assert not (tmp_path / "x").exists()  # nothing was created


def test_run_directories_are_not_clobbered(finished, tmp_path, capsys):
    out, _ = finished
    before = (out / "results.json").read_bytes()
    _refused(RUN + FAST + ["--out", str(out)], capsys, "finished run", "--overwrite")
    _refused(RUN + FAST + ["--out", str(out), "--resume"], capsys, "finished run")
    assert (out / "results.json").read_bytes() == before
    unfinished = tmp_path / "unfinished"
    shutil.copytree(out, unfinished)
    (unfinished / "results.json").unlink()
    _refused(RUN + FAST + ["--out", str(unfinished), "--resume", "--lr", "0.01"], capsys, "different config", "lr")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    _refused(RUN + FAST + ["--out", str(foreign)], capsys, "holds no run")
    _refused(RUN + FAST + ["--out", str(foreign), "--overwrite"], capsys, "holds no run")
    assert (foreign / "notes.txt").read_text() == "mine"
    _, options = toy2d.parse_args(RUN + FAST + ["--out", str(unfinished), "--overwrite"])  # --overwrite clears the run
    assert options.overwrite and not any(unfinished.iterdir())
