"""The experiment scripts as configs plus a short main: ``--help`` and the config modules need no JAX, the
command line comes from the config fields, the default recipes are the published ones, the scripts run as
files and as modules, and binary_density follows the run-directory rules before writing anything."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from experiments import catalog, cli
from experiments.configs import binary_density as binary_configs
from experiments.configs import images as image_configs
from experiments.configs import toy2d as toy_configs

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("toy2d", "images", "binary_density", "demo", "sampler_demo", "toy2d_table", "bench_samplers",
           "bench_autoregressive", "bench_train", "guidance")  # fmt: skip
CONFIGS = ("toy2d", "images", "binary_density", "demo", "sampler_demo", "toy2d_table", "bench_samplers",
           "bench_autoregressive", "bench_train", "guidance")  # fmt: skip


def _python(code: str, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def test_help_and_configs_need_no_jax():
    """In a fresh interpreter: every config module and its named recipes, a full parse, and every script's
    --help, with JAX never imported; the whole check is fast."""
    proc = _python(f"""
        import contextlib, importlib, io, sys, time
        t = time.perf_counter()
        from experiments import cli
        for name in {CONFIGS!r}:
            module = importlib.import_module("experiments.configs." + name)
            for recipe in getattr(module, "NAMES", ()):
                module.get_config(recipe)
        from experiments.configs import toy2d
        config, opts = cli.parse(toy2d, ["--family", "cfm", "--dataset", "moons", "--out", "x", "--steps", "7"])
        assert config.steps == 7 and config.family == "cfm" and str(opts.out) == "x", (config, opts)
        for name in {SCRIPTS!r}:
            module = importlib.import_module("experiments." + name)
            with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
                module.main(["--help"])
            assert "--" in out.getvalue() and "default" in out.getvalue(), name
        assert "jax" not in sys.modules, sorted(m for m in sys.modules if m.startswith("jax"))[:5]
        print(time.perf_counter() - t)
    """)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.split()[-1]) < 10.0  # seconds for all of it, JAX's import alone takes longer


def test_help_shows_the_selected_recipe(capsys):
    with pytest.raises(SystemExit):
        cli.parse(binary_configs, ["--model", "made", "--dataset", "dna", "--help"])
    text = capsys.readouterr().out
    assert "L2 penalty on the weight matrices, added to the mean NLL (default: 0.01)" in " ".join(text.split())
    assert "the recipe of --model made --dataset dna" in " ".join(text.split())


def test_defaults_are_the_published_recipes():
    made = binary_configs.get_config(model="made", dataset="dna")  # the 84.1-nat row needs the L2 penalty
    assert (made.l2, made.steps, made.patience, made.num_masks) == (1e-2, 10_000, 8, 1)
    config, _ = cli.parse(binary_configs, ["--model", "made", "--dataset", "dna", "--out", "x"])
    assert config == made and binary_configs.recipe_name(config) == "dna-made"
    masks = binary_configs.get_config("dna-made-masks")
    assert (masks.num_masks, masks.order_agnostic, masks.direct, masks.l2) == (1_000_000, True, True, 0.0)
    for name in binary_configs.NAMES:  # every named recipe is told apart from the others
        assert binary_configs.recipe_name(binary_configs.get_config(name)) == name
    assert image_configs.get_config(family="fm", dataset="mnist").steps == 10_000
    assert toy_configs.get_config(family="ve", dataset="moons").sigma_range == (0.02, 20.0)


def test_overrides_from_the_fields(capsys):
    base = ["--out", "x"]
    config, _ = cli.parse(binary_configs, ["--config", "dna-made-masks", "--steps", "5", "--no-direct"] + base)
    assert (config.steps, config.direct, config.num_masks) == (5, False, 1_000_000)
    config, _ = cli.parse(binary_configs, ["--model", "made", "--hidden", "16,8", "4"] + base)
    assert config.hidden == (16, 8, 4)
    for argv, words in ((["--model", "fvsbn", "--dim", "3"], ["--dim only applies to --model transformer"]),
                        (["--model", "made", "--lr", "0"], ["--lr", "> 0"]),
                        (["--model", "pixelcnn", "--dataset", "dna"], ["needs image data"]),
                        (["--model", "made", "--config", "nope"], ["--config", "invalid choice"])):  # fmt: skip
        with pytest.raises(SystemExit) as err:
            cli.parse(binary_configs, argv + base)
        assert err.value.code == 2
        message = capsys.readouterr().err
        assert all(word in message for word in words), message
    with pytest.raises(ValueError, match="--reflow-pairs"):  # the same checks for configs built in code
        dataclasses.replace(toy_configs.get_config(family="rectified"), reflow_pairs=10)


def test_the_name_table_matches_the_library():
    import genmodels as gm

    assert catalog.TOYS == tuple(gm.data.TOYS)
    assert all(isinstance(getattr(gm.samplers, e.cls), type) for e in catalog.SAMPLERS.values())
    assert all(isinstance(getattr(gm.autoregressive, c), type) for c in catalog.AR_MODELS.values())
    assert all(callable(getattr(gm.losses, f.loss)) for f in catalog.FAMILIES.values())
    assert catalog.sampler_name("DPMSolverPP2M") == "dpm++2m" and catalog.split_spec("euler-2") == ("euler", 2)


def test_script_and_module_forms_agree(tmp_path):
    """``python experiments/X.py`` and ``python -m experiments.X`` from another folder, no sys.path edits."""
    args = ["--batch", "64", "--nfe", "4", "--samplers", "euler", "--seeds", "1", "--ode-tols"]
    for form, cmd in (
        ("file", [str(REPO / "experiments" / "sampler_demo.py")]),
        ("module", ["-m", "experiments.sampler_demo"]),
    ):
        proc = subprocess.run([sys.executable, *cmd, *args, "--out", str(tmp_path / form)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads((tmp_path / form / "results.json").read_text())["rows"] for form in ("file", "module")]
    assert rows[0] == rows[1] and [(r["sampler"], r["nfe"]) for r in rows[0]] == [("Euler", 4)]


def test_binary_density_refuses_before_writing(tmp_path, capsys):
    from experiments import binary_density

    def refused(argv, *words):
        with pytest.raises(SystemExit) as err:
            binary_density.main(argv)
        assert err.value.code == 2
        message = capsys.readouterr().err
        assert all(word in message for word in words), message

    out = tmp_path / "out"
    refused(["--model", "made", "--steps", "0", "--out", str(out)], "--steps", ">= 1")
    refused(["--model", "made", "--num-masks", "0", "--out", str(out)], "--num-masks", ">= 1")
    refused(["--model", "fvsbn", "--dataset", "npz", "--out", str(out)], "--dataset npz needs --data-path")
    refused(["--model", "fvsbn", "--dataset", "npz", "--data-path", str(tmp_path / "no.npz"), "--out", str(out)],
            "--data-path", "no.npz")  # fmt: skip
    assert not out.exists()
    (tmp_path / "file").write_text("mine")
    refused(["--model", "fvsbn", "--out", str(tmp_path / "file")], "not a directory")
    finished = tmp_path / "toy2d_run"  # another script's finished run, and a folder of the user's
    finished.mkdir()
    for name in ("results.json", "samples.png", "density.png"):
        (finished / name).write_text(name)
    refused(["--model", "fvsbn", "--out", str(finished)], "density.png")
    refused(["--model", "fvsbn", "--out", str(finished), "--overwrite"], "density.png")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "samples.png").write_text("my picture")
    refused(["--model", "fvsbn", "--out", str(mine)], "holds no run")
    assert (mine / "samples.png").read_text() == "my picture"
    assert all((finished / name).read_text() == name for name in ("results.json", "samples.png", "density.png"))


def test_binary_density_on_your_own_file(tmp_path):
    from experiments import binary_density

    rng = np.random.default_rng(0)
    data = {k: (rng.random((n, 6)) < 0.3).astype(np.float32) for k, n in (("train_data", 40), ("valid_data", 10),
                                                                          ("test_data", 10))}  # fmt: skip
    np.savez(tmp_path / "mine.npz", **data)
    config = dataclasses.replace(binary_configs.get_config(model="fvsbn", dataset="npz"),
                                 data_path=str(tmp_path / "mine.npz"), steps=4, validate_every=2, batch_size=8)  # fmt: skip
    res = binary_density.run(config, tmp_path / "run", quiet=True)
    assert res["reference_test_nll_nats"] is None and res["recipe"] is None and res["dataset"] == "npz"
    assert "mine.npz: 40 train / 10 valid / 10 test" in res["data"] and 0 < res["test_nll_nats"] < 6 * np.log(2) * 2


def test_progress_prints_plain_lines_off_a_terminal(monkeypatch, capsys):
    from genmodels.train import _log

    monkeypatch.setenv(_log.PROGRESS_ENV, "lines")
    assert _log.progress_style(True) == "lines" and _log.progress_style(False) == "off"
    monkeypatch.setenv(_log.PROGRESS_ENV, "")
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert _log.progress_style(True) == "lines"  # pytest's stderr is not a terminal
    monkeypatch.setattr(_log, "LINE_SECONDS", 0.0)
    bar = _log._Lines(total=10, initial=0)
    bar.set_postfix(loss="0.5")
    bar.update(4)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("step 4/10 (40%) loss 0.5") and "\r" not in "".join(lines) and len(lines) == 2


def test_demo_table_fits_100_columns(tmp_path):
    from experiments import demo, images

    fd = {
        "num_samples": 500,
        "reference": "360 held-out images",
        "seeds": 5,
        "floor_real_vs_real": {"mean": 8.123, "std": 0.4567},
        "ceiling_uniform_noise": {"mean": 612.3, "std": 3.2},
    }
    res = {"dataset": "digits", "classifier_frechet": fd,
           "samplers": {"heun_35": {"nfe": 35, "classifier_fd": {"mean": 12.3456, "std": 0.789}}}}  # fmt: skip
    rows = [{"part": "2-D cfm on 8gaussians", "steps": 3000, "metric": ["swd 0.0312 (ratio 0.95)",
             "data vs data 0.0329 ± 0.0041"], "nll": "2.931 nats"},
            {"part": "EDM U-Net on 8x8 digits", "steps": 1500, "metric": ["FD 12.3 ± 0.79 (heun_35, NFE 35)",
             "floor: real vs real 8.12 ± 0.46", "ceiling: noise 612 ± 3.2"], "nll": "1.23 bits/dim"}]  # fmt: skip
    lines = demo.table(rows) + images.fd_lines(res)
    assert max(map(len, lines)) <= 100 and "12.35 ± 0.79" in lines[-1] and "8.12 ± 0.46" in "".join(lines)
    (tmp_path / "a").mkdir()
    for name in ("a/samples.png", "a/loss.png", "b.png"):
        (tmp_path / name).write_text("")
    assert [line.split(": ")[1] for line in demo.pictures(tmp_path)] == ["loss.png, samples.png", "b.png"]


def test_output_scripts_share_resume_and_overwrite(tmp_path, capsys):
    from experiments import sampler_demo

    argv = ["--samplers", "euler", "--nfe", "4", "--ode-tols", "--batch", "64", "--seeds", "2", "--out", str(tmp_path)]
    first = sampler_demo.main(argv)
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if not line.startswith("wrote")]
    assert "mean ± std over 2 seeds" in out and max(map(len, table)) <= 100
    assert first["rows"][0]["nfe"] == 4 and first["rows"][0]["swd_std"] is not None
    with pytest.raises(SystemExit, match="--resume .* --overwrite"):
        sampler_demo.main(argv)
    assert sampler_demo.main([*argv, "--resume", "--quiet"]) == json.loads((tmp_path / "results.json").read_text())
    assert capsys.readouterr().out.startswith("mean ± std over 2 seeds")


def test_messages_name_command_line_flags():
    text = ("pass resume=True (--resume) to continue it, or overwrite=True (--overwrite) to start afresh; "
            "a new run (overwrite=True / --overwrite); break_lock=True in Python, --break-lock on an "
            "experiment's command line")  # fmt: skip
    said = cli.flags_only(text)
    assert "=True" not in said and "in Python" not in said
    assert said.startswith("pass --resume to continue it, or --overwrite to start afresh; a new run (--overwrite)")
