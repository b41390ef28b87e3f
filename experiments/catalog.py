"""The names the experiments use for samplers, model families and datasets, in one table (no JAX here).

``experiments/build.py`` turns a name into the genmodels object; configs and command lines check names
against these tables, so ``--help`` lists them without importing JAX. Adding a sampler to the experiments is
one row of :data:`SAMPLERS` (its class must exist in ``gm.samplers``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerEntry:
    """A sampler of ``gm.samplers``: ``cls`` takes the schedule first (``None``: adaptive, no schedule),
    ``calls_per_step`` denoiser evaluations per schedule step (to size a schedule for an NFE budget),
    ``options`` fixed keyword arguments, ``k_diffusion`` the function of the same method in k-diffusion."""

    cls: str
    label: str
    calls_per_step: int | None = 1
    options: tuple[tuple[str, object], ...] = ()
    k_diffusion: str | None = None


SAMPLERS: dict[str, SamplerEntry] = {
    "euler": SamplerEntry("Euler", "Euler", 1, k_diffusion="sample_euler"),
    "heun": SamplerEntry("Heun", "Heun", 2, k_diffusion="sample_heun"),
    "heun-churn": SamplerEntry("Heun", "Heun (churn)", 2, (("s_churn", 10.0), ("s_tmin", 0.05), ("s_tmax", 50.0))),
    "dpm++2m": SamplerEntry("DPMSolverPP2M", "DPM-Solver++(2M)", 1, k_diffusion="sample_dpmpp_2m"),
    "dpm++3m-sde": SamplerEntry("DPMSolverPP3MSDE", "DPM-Solver++(3M) SDE", 1),
    "ddim": SamplerEntry("DDIM", "DDIM", 1),
    "euler-ancestral": SamplerEntry("EulerAncestral", "Euler ancestral", 1),
    "euler-maruyama": SamplerEntry("EulerMaruyama", "Euler-Maruyama", 1),
    "pc": SamplerEntry("PredictorCorrector", "Predictor-corrector", 2),
    "langevin": SamplerEntry("AnnealedLangevin", "Annealed Langevin", None),
    "ode": SamplerEntry("ODE", "ODE (adaptive)", None),
    "ancestral": SamplerEntry("Ancestral", "Ancestral (autoregressive)", None),
}


def sampler_name(text: str) -> str:
    """The table's name for ``text``: a name of :data:`SAMPLERS` or a ``gm.samplers`` class name (``Heun``)."""
    if text in SAMPLERS:
        return text
    for name, entry in SAMPLERS.items():
        if entry.cls == text and not entry.options:
            return name
    raise ValueError(f"unknown sampler {text!r}; choose from {', '.join(SAMPLERS)} (or their class names).")


def split_spec(spec: str) -> tuple[str, int | None]:
    """A sampler spec ``NAME`` or ``NAME-STEPS`` -> (NAME, STEPS or None): ``"euler-2"`` -> ``("euler", 2)``."""
    head, _, tail = spec.rpartition("-")
    return (head, int(tail)) if head and tail.isdigit() else (spec, None)


@dataclass(frozen=True)
class Family:
    """A family of continuous-data models: the model around a network and its training loss."""

    model: str  # "edm" | "vp" | "ve" (EDMModel with that preconditioning), "score" (ScoreModel), "velocity" (PathModel)
    loss: str  # function of gm.losses
    flow: bool  # sampled from sigma = inf on the Linear path
    about: str


FAMILIES: dict[str, Family] = {
    "edm": Family("edm", "edm_loss", False, "EDMModel (EDM preconditioning) + edm_loss"),
    "vp": Family("vp", "vp_loss", False, "EDMModel with VP preconditioning + vp_loss"),
    "ve": Family("ve", "ve_loss", False, "EDMModel with VE preconditioning + ve_loss"),
    "ncsn": Family("score", "ncsn_loss", False, "ScoreModel + ncsn_loss over a geometric ladder"),
    "ssm": Family("score", "ssm_loss", False, "ScoreModel + sliced score matching (SSM-VR) on the ladder's levels"),
    "cfm": Family("velocity", "cfm_loss", True, "velocity PathModel on the Linear path + I-CFM / rectified-flow loss"),
    "fm": Family("velocity", "cfm_loss", True, "flow matching: the same as cfm"),
    "ot-cfm": Family("velocity", "cfm_loss", True, "cfm with a Sinkhorn minibatch OT coupling"),
    "rectified": Family("velocity", "cfm_loss", True, "cfm, then one reflow round (reflow_loss on the model's pairs)"),
}

AR_MODELS: dict[str, str] = {  # name -> class of gm.autoregressive
    "fvsbn": "FVSBN",
    "nade": "NADE",
    "made": "MADE",
    "pixelcnn": "PixelCNN",
    "transformer": "Transformer",
}

TOYS = ("8gaussians", "moons", "checkerboard", "swissroll", "pinwheel", "circles", "spirals")  # gm.data.TOYS
IMAGE_DATASETS = ("digits", "mnist")
BINARY_DATASETS = ("digits", "dna", "mushrooms", "mnist", "npz")  # npz: your own file (--data-path)
