"""genmodels.train: optimiser/EMA math, training, exact resume (stop and SIGKILL), NaN handling, corrupt
checkpoints, data-parallel equivalence (4 simulated CPU devices), steps_per_call, early stopping."""

import functools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import genmodels as gm
from genmodels.data import ArrayDataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """A persistent XLA cache shared by this module and its subprocesses: identical train programs (the
    same model/optimiser in several tests and processes) are compiled once. Restored afterwards."""
    from jax.experimental.compilation_cache import compilation_cache as cc

    path = tmp_path_factory.mktemp("jax-cache")
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    old = [getattr(jax.config, n) for n in names]
    for n, v in zip(names, (str(path), 0.0), strict=False):
        jax.config.update(n, v)
    cc.reset_cache()
    yield path
    for n, v in zip(names, old, strict=False):
        jax.config.update(n, v)
    cc.reset_cache()


def subprocess_env(cache: Path, **extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", **extra}  # fmt: skip


class Net(nnx.Module):
    """A small MLP regressor with dropout (so the RNG state in the model must survive a resume)."""

    def __init__(self, din=2, width=16, dout=1, *, seed=0, dropout=0.0):
        rngs = nnx.Rngs(seed)
        self.l1 = nnx.Linear(din, width, rngs=rngs)
        self.l2 = nnx.Linear(width, dout, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.drop(jnp.tanh(self.l1(x))))


def regression_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (np.sin(x[:, :1]) + 0.5 * x[:, 1:] ** 2).astype(np.float32)
    return x, y


def mse(model, batch, key):
    x, y = batch
    err = model(x) - y
    return jnp.mean(err**2), {"mae": jnp.mean(jnp.abs(err))}


QUIET = gm.train.Logging(progress=False)


def leaves(model):
    return [np.asarray(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))]


# --------------------------------------------------------------------------------------- optimiser / EMA
def test_lr_schedule_values():
    f = gm.train.warmup_cosine(2.0, warmup=10, total=110, final_fraction=0.1)
    expect = {0: 0.2, 4: 1.0, 9: 2.0, 10: 2.0, 60: 2.0 * (0.1 + 0.9 * 0.5), 110: 0.2, 500: 0.2}
    for t, v in expect.items():
        assert float(f(t)) == pytest.approx(v, rel=1e-6), t
    t = 35
    cos = 2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (t - 10) / 100)))
    assert float(f(t)) == pytest.approx(cos, rel=1e-6)
    g = gm.train.warmup_constant(0.5, warmup=4)
    assert [float(g(t)) for t in (0, 3, 4, 1000)] == pytest.approx([0.125, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="total"):
        gm.train.warmup_cosine(1.0, warmup=10, total=10)
    with pytest.raises(TypeError, match="learning_rate"):  # variants are values: no schedule="linear" strings
        gm.train.adamw("linear")


def test_adamw_updates():
    """Adam's first update is -lr * g / (|g| + eps) = -lr sign(g); decay is decoupled (-lr wd p)."""
    opt = gm.train.adamw(gm.train.warmup_constant(0.5, warmup=4), clip=None)
    p = {"w": jnp.array([1.0, -2.0, 3.0])}
    upd, _ = opt.update({"w": jnp.array([0.3, -7.0, 2.0])}, opt.init(p), p)
    np.testing.assert_allclose(upd["w"], -0.125 * np.array([1.0, -1.0, 1.0]), rtol=1e-5)
    opt = gm.train.adamw(0.1, weight_decay=0.01, clip=None)
    upd, _ = opt.update({"w": jnp.zeros(3)}, opt.init(p), p)
    np.testing.assert_allclose(upd["w"], -0.1 * 0.01 * p["w"], rtol=1e-5)
    # clipping by global norm: a gradient of norm 10 is scaled to norm 1 before Adam (sign unchanged)
    clip = optax.clip_by_global_norm(1.0)
    g = {"w": jnp.array([6.0, -8.0, 0.0])}
    np.testing.assert_allclose(clip.update(g, clip.init(p))[0]["w"], [0.6, -0.8, 0.0], rtol=1e-6)


class Scalar(nnx.Module):
    def __init__(self, value):
        self.w = nnx.Param(jnp.asarray(value, jnp.float32))

    def __call__(self):
        return self.w[...]


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_matches_closed_form(warmup):
    """SGD on a linear loss: theta_s = theta_0 - s lr c exactly; EMA_{s+1} = d_s EMA_s + (1 - d_s) theta_{s+1}
    with d_s = d (no warm-up: EMA_s = d^s theta_0 + (1 - d) sum_j d^{s-j} theta_j) or min(d, (1+s)/(10+s))."""
    d, lr, c, steps, theta0 = 0.9, 0.1, 2.0, 12, 1.5
    ds = ArrayDataset(np.zeros((4, 1), np.float32), batch_size=2)
    res = gm.train.fit(Scalar(theta0), lambda m, b, k: (c * m() + 0.0 * b.sum(), {}), ds, key=jax.random.key(0),
                       steps=steps, optimizer=optax.sgd(lr), ema=gm.train.EMA(d, warmup=warmup),
                       log=QUIET)  # fmt: skip
    theta = [theta0 - s * lr * c for s in range(steps + 1)]
    if warmup:
        ema = theta[0]
        for s in range(steps):
            d_s = min(d, (1 + s) / (10 + s))
            ema = d_s * ema + (1 - d_s) * theta[s + 1]
    else:
        ema = d**steps * theta[0] + (1 - d) * sum(d ** (steps - j) * theta[j] for j in range(1, steps + 1))
    assert float(res.model.w[...]) == pytest.approx(theta[-1], rel=1e-5)
    assert float(res.ema_model.w[...]) == pytest.approx(ema, rel=1e-5)
    e = gm.train.ema_update({"a": jnp.array(1.0)}, {"a": jnp.array(3.0)}, 0.75)
    assert float(e["a"]) == pytest.approx(1.5)
    assert float(gm.train.ema_decay_at(0.999, 0)) == pytest.approx(0.1)
    assert float(gm.train.ema_decay_at(0.999, 10**6)) == pytest.approx(0.999)
    assert float(gm.train.ema_decay_at(0.999, 0, warmup=False)) == pytest.approx(0.999)


# -------------------------------------------------------------------------------------------- training
def test_fit_reduces_loss_and_writes_run_dir(tmp_path):
    x, y = regression_data()
    ds = ArrayDataset((x, y), batch_size=32)
    model = Net()
    before = float(mse(model, (x, y), None)[0])
    res = gm.train.fit(model, mse, ds, key=jax.random.key(0), steps=300, optimizer=gm.train.adamw(1e-2),
                       log=gm.train.Logging(every=50, progress=False),
                       run_dir=gm.train.RunDirectory(tmp_path / "run", config={"lr": 1e-2}),
                       execution=gm.train.Execution(steps_per_call=10))  # fmt: skip
    after = float(mse(res.model, (x, y), None)[0])
    assert res.model is model and res.step == 300
    assert after < 0.1 * before
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 6 and losses[-1] < 0.2 * losses[0]
    assert all("mae" in r and "steps_per_sec" in r for r in rows if "loss" in r)
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {"lr": 0.01}
    assert (tmp_path / "run" / "checkpoints" / "300").is_dir()
    assert res.ema_model is not None and gm.train.params_digest(res.ema_model) != gm.train.params_digest(model)
    with pytest.raises(FileExistsError, match="resume=True"):  # an existing run is never clobbered
        gm.train.fit(Net(), mse, ds, key=jax.random.key(0), steps=10, log=QUIET, run_dir=tmp_path / "run")


def test_bf16_compute_keeps_f32_params():
    x, y = regression_data()
    ds = ArrayDataset((x, y), batch_size=32)
    res = gm.train.fit(Net(), mse, ds, key=jax.random.key(0), steps=100, optimizer=gm.train.adamw(1e-2),
                       execution=gm.train.Execution(steps_per_call=20, compute_dtype=jnp.bfloat16), log=QUIET)  # fmt: skip
    assert all(v.dtype == np.float32 for v in leaves(res.model))
    assert float(mse(res.model, (x, y), None)[0]) < 0.3 * float(mse(Net(), (x, y), None)[0])


def _run(
    tmp, name, steps, *, steps_per_call, checkpoint_every=None, resume=False, validate=None, validate_every=1000, **kw
):
    x, y = regression_data()
    ds = ArrayDataset((x, y), batch_size=16)  # 6 batches per epoch: runs cross epochs
    model = Net(dropout=0.1)
    opts = dict(key=jax.random.key(7), steps=steps, optimizer=gm.train.adamw(gm.train.warmup_cosine(3e-3, 5, 40)),
                ema=gm.train.EMA(0.9), log=QUIET, execution=gm.train.Execution(steps_per_call=steps_per_call))  # fmt: skip
    if tmp:
        opts.update(run_dir=gm.train.RunDirectory(tmp / name, resume=resume),
                    checkpoints=gm.train.Checkpoints(every=checkpoint_every))  # fmt: skip
    if validate:
        opts.update(validation=gm.train.Validation(validate, every=validate_every))
    opts.update(kw)
    return gm.train.fit(model, mse, ds, **opts)


def test_steps_per_call_and_stop_resume_are_exact(tmp_path):
    ref = _run(None, None, 40, steps_per_call=1)
    scanned = _run(None, None, 40, steps_per_call=6)
    assert gm.train.params_digest(scanned.model) == gm.train.params_digest(ref.model)
    assert gm.train.params_digest(scanned.ema_model) == gm.train.params_digest(ref.ema_model)
    _run(tmp_path, "a", 25, checkpoint_every=5, steps_per_call=3)  # stops at 25 ...
    resumed = _run(tmp_path, "a", 40, checkpoint_every=5, steps_per_call=3, resume=True)  # ... continues
    assert resumed.step == 40
    assert gm.train.params_digest(resumed.model) == gm.train.params_digest(ref.model)
    assert gm.train.params_digest(resumed.ema_model) == gm.train.params_digest(ref.ema_model)
    steps = [r["step"] for r in resumed.history if "loss" in r]
    assert steps == sorted(steps) and steps[-1] == 40


# ---------------------------------------------------------------------------------------- SIGKILL resume
CHILD = textwrap.dedent(
    """
    import sys, time, json
    from pathlib import Path
    sys.path[:0] = [{repo!r}, {tests!r}]
    import genmodels as gm
    from test_train import _run  # the same program as test_steps_per_call_and_stop_resume_are_exact

    def run(run_dir, validate):
        res = _run(Path(run_dir).parent, Path(run_dir).name, 36, checkpoint_every=6, resume=True,
                   validate=validate, validate_every=3, steps_per_call=3)
        return {{"digest": gm.train.params_digest(res.model), "ema": gm.train.params_digest(res.ema_model)}}

    slow = lambda m: (time.sleep(0.1), 0.0)[1]  # slows the run down so that it can be killed mid-way
    out = {{"resumed": run(sys.argv[1], slow)}}
    if len(sys.argv) > 2:  # an uninterrupted reference run in a fresh folder
        out["reference"] = run(sys.argv[2], lambda m: 0.0)
    print(json.dumps(out))
    """
)


def test_sigkill_then_resume_is_bit_identical(tmp_path, compilation_cache):
    """kill -9 a training process after a checkpoint, resume it in a new process: same final parameters."""
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=str(REPO), tests=str(REPO / "tests")))
    env = subprocess_env(compilation_cache)
    run = [sys.executable, str(script), str(tmp_path / "run")]
    victim = subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    ckpts = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None:
        done = [int(p.name) for p in ckpts.glob("*") if p.name.isdigit()] if ckpts.exists() else []
        if done and max(done) >= 12:
            break
        time.sleep(0.02)
    assert victim.poll() is None, f"the child ended before it could be killed: {victim.communicate()[1][-2000:]}"
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    killed_at = max(int(p.name) for p in ckpts.glob("*") if p.name.isdigit())
    assert 12 <= killed_at < 36
    out = subprocess.run([*run, str(tmp_path / "ref")], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.splitlines()[-1])
    assert res["resumed"] == res["reference"]
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if r.strip()]
    assert {"step": killed_at, "event": "resume"} in rows


# ------------------------------------------------------------------------------------ failures and errors
def test_nan_loss_stops_with_step_and_keeps_checkpoint(tmp_path):
    """SGD on w + 0 * sqrt(w) from w = 2.1 with lr 0.5: w_5 = -0.4 makes the loss NaN at step 5."""
    ds = ArrayDataset(np.zeros((4, 1), np.float32), batch_size=2)

    def loss(m, b, k):
        return m() + 0.0 * jnp.sqrt(m()) + 0.0 * b.sum()

    loss = gm.train.scalar_loss(loss)
    opts = dict(key=jax.random.key(0), optimizer=optax.sgd(0.5), ema=None, log=QUIET,
                checkpoints=gm.train.Checkpoints(every=2), execution=gm.train.Execution(steps_per_call=3))  # fmt: skip
    with pytest.raises(FloatingPointError, match="step 5") as err:
        gm.train.fit(Scalar(2.1), loss, ds, steps=20, run_dir=tmp_path / "run", **opts)
    assert err.value.step == 5
    ckpts = sorted(int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.isdigit())
    assert ckpts == [2, 4]
    rows = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1] == {"step": 5, "event": "non-finite", "loss": rows[-1]["loss"]} and math.isnan(rows[-1]["loss"])
    resume = gm.train.RunDirectory(tmp_path / "run", resume=True)
    res = gm.train.fit(Scalar(2.1), loss, ds, steps=4, run_dir=resume, **opts)  # the last good checkpoint loads
    assert res.step == 4 and float(res.model.w[...]) == pytest.approx(0.1, abs=1e-6)


def test_corrupt_or_mismatched_checkpoint_is_a_clear_error(tmp_path):
    x, y = regression_data()
    ds = ArrayDataset((x, y), batch_size=16)
    kw = dict(key=jax.random.key(0), log=QUIET, checkpoints=gm.train.Checkpoints(every=5))
    gm.train.fit(Net(), mse, ds, steps=5, run_dir=tmp_path / "run", **kw)
    kw["run_dir"] = gm.train.RunDirectory(tmp_path / "run", resume=True)
    with pytest.raises(gm.train.CheckpointError, match="does not match") as err:
        gm.train.fit(Net(width=8), mse, ds, steps=10, **kw)
    assert "params['l1']['bias']" in str(err.value) and "(16,)" in str(err.value) and "(8,)" in str(err.value)
    files = [p for p in (tmp_path / "run" / "checkpoints" / "5" / "arrays").rglob("*") if p.is_file()]
    data_files = [p for p in files if p.stat().st_size > 0 and "metadata" not in p.name]
    for p in data_files:  # flip bytes in the stored arrays
        b = bytearray(p.read_bytes())
        for i in range(len(b) // 2, len(b)):
            b[i] ^= 0xFF
        p.write_bytes(bytes(b))
    with pytest.raises(gm.train.CheckpointError, match="corrupt"):
        gm.train.fit(Net(), mse, ds, steps=10, **kw)
    (tmp_path / "run" / "checkpoints" / "5" / "meta" / "metadata").write_text("{not json")
    with pytest.raises(gm.train.CheckpointError, match="checkpoints/5"):
        gm.train.fit(Net(), mse, ds, steps=10, **kw)


def test_early_stopping_keeps_best_model():
    x, y = regression_data()
    ds = ArrayDataset((x, y), batch_size=16)
    scripted, seen = [3.0, 2.0, 1.0, 1.5, 2.5, 9.0, 9.0], []

    def validate(m):
        seen.append(gm.train.params_digest(m))
        return scripted[len(seen) - 1]

    res = gm.train.fit(Net(), mse, ds, key=jax.random.key(0), steps=100,
                       validation=gm.train.Validation(validate, every=4, patience=2), log=QUIET,
                       execution=gm.train.Execution(steps_per_call=3))  # fmt: skip
    assert res.stopped_early and res.step == 20 and len(seen) == 5
    assert res.best_value == 1.0 and gm.train.params_digest(res.best_model) == seen[2]


def test_bad_arguments():
    x, y = regression_data()
    ds = ArrayDataset((x, y), batch_size=16)
    k = jax.random.key(0)
    T = gm.train
    for make, match in [(lambda: {"execution": T.Execution(steps_per_call=0)}, "steps_per_call"),
                        (lambda: {"ema": T.EMA(1.0)}, "decay"),
                        (lambda: {"validation": T.Validation(lambda m: 0.0, patience=0)}, "patience"),
                        (lambda: {"checkpoints": T.Checkpoints(every=5)}, "run_dir"),
                        (lambda: {"steps": -1}, "steps")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            gm.train.fit(Net(), mse, ds, **{"key": k, "steps": 10, "log": QUIET, **make()})
    with pytest.raises(TypeError, match="nnx.Module"):
        gm.train.fit(lambda x: x, mse, ds, key=k, steps=1)
    with pytest.raises(TypeError, match="AbstractDataset"):
        gm.train.fit(Net(), mse, (x, y), key=k, steps=1)
    with pytest.raises(ValueError, match="scalar loss"):
        gm.train.fit(Net(), lambda m, b, key: (m(b[0]), {}), ds, key=k, steps=1, log=QUIET)
    with pytest.raises(ValueError, match="axis named 'data'"):
        gm.train.fit(Net(), mse, ds, key=k, steps=1, execution=gm.train.Execution(mesh=jax.make_mesh((1,), ("batch",))))
    assert gm.train.init_distributed() is False  # one process: a no-op
    assert gm.train.data_mesh().axis_names == ("data",)


# ---------------------------------------------------------------------------------------- data parallel
SHARDED = textwrap.dedent(
    """
    import sys, json, jax, numpy as np
    from flax import nnx
    sys.path[:0] = [{repo!r}, {tests!r}]
    import genmodels as gm
    from test_train import Net, mse, regression_data
    assert jax.device_count() == 4, jax.devices()
    x, y = regression_data(256)
    ds = gm.data.ArrayDataset((x, y), 64)
    kw = dict(key=jax.random.key(1), steps=30, optimizer=gm.train.adamw(1e-2), log=gm.train.Logging(progress=False))
    one = gm.train.fit(Net(width=32), mse, ds, execution=gm.train.Execution(steps_per_call=5), **kw)
    mesh = gm.train.Execution(steps_per_call=5, mesh=gm.train.data_mesh())
    four = gm.train.fit(Net(width=32), mse, ds, execution=mesh, **kw)
    a = [np.asarray(v) for v in jax.tree.leaves(nnx.state(one.model, nnx.Param))]
    b = [np.asarray(v) for v in jax.tree.leaves(nnx.state(four.model, nnx.Param))]
    leaf = jax.tree.leaves(nnx.state(four.model, nnx.Param))[0]
    err = ""
    try:
        gm.train.fit(Net(), mse, gm.data.ArrayDataset((x, y), 30), execution=mesh, **kw)
    except ValueError as e:
        err = str(e)
    print(json.dumps({{"max_abs": max(float(np.abs(u - v).max()) for u, v in zip(a, b)),
                      "max_param": max(float(np.abs(u).max()) for u in a),
                      "devices": len(leaf.sharding.device_set), "err": err}}))
    """
)


def test_four_device_data_parallel_matches_one_device(tmp_path, compilation_cache):
    """Same data, keys and program, batch split over 4 devices: the gradient mean is reduced per device and
    then all-reduced, a different summation order than one device's, so parameters agree to float32
    rounding accumulated over 30 Adam steps (observed ~2e-7 on parameters of size ~1.5; Adam's normalised
    step keeps such differences near the ulp level), not bit for bit. Tolerance 1e-5 relative."""
    script = tmp_path / "sharded.py"
    script.write_text(SHARDED.format(repo=str(REPO), tests=str(REPO / "tests")))
    env = subprocess_env(compilation_cache, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.splitlines()[-1])
    assert res["devices"] == 4
    assert res["max_abs"] < 1e-5 * max(1.0, res["max_param"])
    assert "divisible" in res["err"] and "4 devices" in res["err"]


# ------------------------------------------------------------------------------------- policies as values
def test_policies_are_small_checked_values():
    ck = gm.train.Checkpoints(every=4)
    assert [s for s in range(1, 13) if ck.due(s, end=s == 10)] == [4, 8, 10, 12]
    assert not gm.train.Checkpoints().due(4, end=False) and gm.train.Checkpoints().due(4, end=True)
    val = gm.train.Validation(lambda m: 0.0, every=5, patience=2)
    assert [s for s in range(1, 13) if val.due(s, 12)] == [5, 10, 12]
    rec, seen = gm.train.ValidationRecord(), []
    for step, value in enumerate([3.0, 1.0, 2.0, 1.0, 0.5, 0.7, 0.9], start=1):
        rec, improved = val.record(rec, value, step)
        seen.append((improved, rec.bad_count, rec.stopped))
    assert seen == [(True, 0, False), (True, 0, False), (False, 1, False), (False, 2, True),
                    (True, 0, False), (False, 1, False), (False, 2, True)]  # fmt: skip
    assert rec.best_value == 0.5 and rec.best_step == 5
    assert gm.train.ValidationRecord.from_meta(rec.to_meta()) == rec
    with pytest.raises(FloatingPointError, match="nan at step 7"):
        gm.train.Validation(lambda m: float("nan")).evaluate(None, 7)
    ex = gm.train.Execution(steps_per_call=6)
    assert [ex.call_length(s, 20, 4, None) for s in (0, 4, 6, 8, 12, 18)] == [4, 2, 2, 4, 4, 2]
    assert gm.train.EMA(0.9, warmup=False).decay_at(0) == pytest.approx(0.9)
    for bad, match in [(lambda: gm.train.Checkpoints(every=0), "every"), (lambda: gm.train.Logging(every=-1), "every"),
                       (lambda: gm.train.Validation(3.0), "callable"), (lambda: gm.train.EMA(-0.1), "decay"),
                       (lambda: gm.train.Execution(compute_dtype=jnp.int32), "compute_dtype")]:  # fmt: skip
        with pytest.raises((ValueError, TypeError), match=match):
            bad()


def test_fingerprint_names_what_differs():
    from genmodels.train._fingerprint import describe, fingerprint_diff, optimizer_fingerprint

    def loss(m, b, k, *, scale):
        return scale * m(), {}

    assert "scale=2.0" in " ".join(describe(functools.partial(loss, scale=2.0)).values())
    p = {"w": jnp.ones(3)}

    def fp(opt, lossf=functools.partial(loss, scale=1.0)):
        return {"optimizer": optimizer_fingerprint(opt, opt.init(p)), "loss": describe(lossf)}

    base = fp(gm.train.adamw(1e-3))
    assert fingerprint_diff(base, fp(gm.train.adamw(1e-3))) == []
    assert "hyper-parameters differ" in fingerprint_diff(base, fp(gm.train.adamw(2e-3)))[0]
    assert "ScaleByAdamState" in fingerprint_diff(base, fp(optax.sgd(1e-3)))[0]
    assert "scale=1.0 -> " in fingerprint_diff(base, fp(gm.train.adamw(1e-3), functools.partial(loss, scale=3.0)))[0]


def test_negative_or_nan_learning_rate_is_refused():
    ds = ArrayDataset(np.zeros((4, 1), np.float32), batch_size=2)
    loss = gm.train.scalar_loss(lambda m, b, k: m() + 0.0 * b.sum())
    for opt, match in [(optax.sgd(-0.1), "is 0.1.*does not descend"), (gm.train.adamw(lambda t: 1e-3 - 1e-5 * t), "at step 101"),
                       (optax.adam(lambda t: jnp.where(t > 500, jnp.nan, 1e-3)), "nan at step 501")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            gm.train.fit(Scalar(1.0), loss, ds, key=jax.random.key(0), steps=1000, optimizer=opt, log=QUIET)
    with pytest.raises(ValueError, match="learning_rate"):
        gm.train.adamw(-1e-3)
    with pytest.raises(TypeError, match="scalar_loss"):  # a loss returns (loss, metrics); scalars are adapted
        gm.train.fit(Scalar(1.0), lambda m, b, k: m(), ds, key=jax.random.key(0), steps=1, log=QUIET)


def _scaled(m, b, k, *, scale):
    return scale * m() ** 2 + 0.0 * b.sum(), {}


def test_resume_refuses_what_would_silently_differ(tmp_path):
    """Without a config, the checkpoint's fingerprint guards a resume: fewer steps than done, another optimiser
    (structure or hyper-parameters), loss (bound keywords) or dataset are errors naming what differs; a
    validation returning NaN is an error naming the step; a resume whose checkpoints are gone starts afresh
    without a second history in metrics.jsonl."""
    ds = ArrayDataset(np.arange(8, dtype=np.float32)[:, None], batch_size=2)
    run = tmp_path / "run"

    def go(steps, *, resume=True, optimizer=optax.sgd(0.1), scale=1.0, data=ds, **kw):
        return gm.train.fit(Scalar(1.0), functools.partial(_scaled, scale=scale), data, key=jax.random.key(0),
                            steps=steps, optimizer=optimizer, ema=None, log=QUIET,
                            run_dir=gm.train.RunDirectory(run, resume=resume), **kw)  # fmt: skip

    first = go(4, resume=False, checkpoints=gm.train.Checkpoints(every=2))
    for kw, match in [({"steps": 2}, "steps=2 is fewer than the 4 steps"),
                      ({"optimizer": optax.sgd(0.2)}, "hyper-parameters differ.*0.1.*0.2"),
                      ({"optimizer": optax.adam(0.1)}, "optimiser's state differs"),
                      ({"scale": 2.0}, "loss differs.*scale=1.0 ->.*scale=2.0"),
                      ({"data": ArrayDataset(np.ones((8, 1), np.float32), 2)}, "data differs"),
                      ({"data": ArrayDataset(np.arange(6, dtype=np.float32)[:, None], 2)}, "length 8 -> 6")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            go(**{"steps": 6, **kw})
    assert go(4).step == 4 and float(go(4).model.w[...]) == float(first.model.w[...])
    with pytest.raises(FloatingPointError, match="nan at step 2"):  # never a silent best_model=None
        gm.train.fit(
            Scalar(1.0),
            functools.partial(_scaled, scale=1.0),
            ds,
            key=jax.random.key(0),
            steps=4,
            optimizer=optax.sgd(0.1),
            log=QUIET,
            validation=gm.train.Validation(lambda m: math.nan, every=2),
        )
    with pytest.warns(UserWarning, match="loss differs.*config is equal"):  # a config is the declared identity
        gm.train.fit(
            Scalar(1.0),
            functools.partial(_scaled, scale=2.0),
            ds,
            key=jax.random.key(0),
            steps=6,
            optimizer=optax.sgd(0.1),
            ema=None,
            log=QUIET,
            run_dir=gm.train.RunDirectory(run, resume=True, config={"note": "scale changed on purpose"}),
        )
    import shutil

    shutil.rmtree(run / "checkpoints")
    with pytest.warns(UserWarning, match="holds no checkpoint"):
        again = go(4)
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == again.history and len(rows) == 2  # one history: the earlier run's rows are gone
    assert rows[0] == {"step": 0, "event": "start"} and rows[1]["step"] == 4
