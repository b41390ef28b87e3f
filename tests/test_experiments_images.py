"""Smoke test of experiments/images.py: a few training steps on the 8x8 digits with a tiny UNet, then the
files and results.json keys it promises; bad command lines fail before anything is written."""

import json
from pathlib import Path

import pytest

TINY = ["--base", "8", "--batch", "32", "--num-samples", "16", "--bpd-images", "4", "--bpd-batch", "4",
        "--bpd-tol", "1e-3", "--bpd-trace", "hutchinson", "--fd-seeds", "2", "--steps-per-call", "3",
        "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def images():
    from experiments import images

    return images


def _check_results(out: Path, steps: int, family: str):
    res = json.loads((out / "results.json").read_text())
    for key in ("config", "wall_time", "params_digest", "bits_per_dim", "classifier", "classifier_frechet",
                "samplers", "data", "steps"):  # fmt: skip
        assert key in res, key
    assert res["steps"] == steps and res["family"] == family and res["config"]["steps"] == steps
    assert len(res["params_digest"]) == 64
    assert "held out" in res["data"]["note"]
    assert res["bits_per_dim"]["num_images"] == 4 and res["bits_per_dim"]["mean"] > 0
    assert res["classifier"]["held_out_accuracy"] >= 0.99  # the shipped network, not one trained here
    fd = res["classifier_frechet"]
    floor, ceiling = fd["floor_real_vs_real"], fd["ceiling_uniform_noise"]
    assert fd["seeds"] == 2 and len(floor["values"]) == 2 and floor["std"] >= 0.0
    assert 0.0 <= floor["mean"] < 0.5 * ceiling["mean"]  # 16 samples: the floor is biased up
    assert {name: s["nfe"] for name, s in res["samplers"].items()} == {
        "heun_35": 35,
        "dpmpp2m_10": 10,
        "dpmpp2m_20": 20,
    }
    for s in res["samplers"].values():
        assert s["classifier_fd"]["mean"] >= 0.0 and len(s["classifier_fd"]["values"]) == 2
        assert s["nonfinite_samples"] == 0
        assert (out / s["grid"]).is_file()
    for name in ("real_test.png", "loss.png", "config.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints").is_dir()
    return res


def test_digits_smoke_and_refusals(images, tmp_path):
    out = tmp_path / "run"
    images.main(["--family", "edm", "--out", str(out), "--steps", "6", "--checkpoint-every", "3", *TINY])
    res = _check_results(out, 6, "edm")
    assert res["dataset"] == "digits" and res["data"]["test_images"] == 360
    before = (out / "results.json").read_bytes()
    for flags in ([], ["--resume"]):  # a finished run is neither overwritten nor re-opened
        with pytest.raises(SystemExit):
            images.main(["--out", str(out), "--steps", "6", *flags, *TINY])
    assert (out / "results.json").read_bytes() == before
    with pytest.raises(SystemExit):
        images.main(["--out", str(tmp_path / "g"), "--guidance", "2.0", *TINY])
    with pytest.raises(SystemExit):
        images.main(
            ["--out", str(tmp_path / "m"), "--dataset", "mnist", "--data-path", str(tmp_path / "nowhere"), *TINY]
        )
    with pytest.raises(SystemExit):
        images.main(["--out", str(tmp_path / "s"), "--steps", "0", *TINY])
    assert not any((tmp_path / name).exists() for name in ("g", "m", "s"))


@pytest.mark.slow
def test_flow_matching_class_conditional_and_resume(images, tmp_path):
    out = tmp_path / "fm"
    args = ["--family", "fm", "--out", str(out), "--class-conditional", "--guidance", "2.0", *TINY]
    images.main([*args, "--steps", "4"])
    first = _check_results(out, 4, "fm")
    assert all("label_accuracy" in s for s in first["samplers"].values())
    (out / "results.json").unlink()  # as if the run had been killed after its last checkpoint
    with pytest.raises(SystemExit):  # an unfinished run needs --resume (or --overwrite)
        images.main([*args, "--steps", "8"])
    images.main([*args, "--steps", "8", "--resume"])  # continues from the step-4 checkpoint
    second = _check_results(out, 8, "fm")
    assert second["params_digest"] != first["params_digest"]
    images.main([*args, "--steps", "4", "--overwrite"])  # redone from scratch: the first run's parameters
    assert _check_results(out, 4, "fm")["params_digest"] == first["params_digest"]
