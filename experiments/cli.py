"""Command lines derived from config dataclasses; no JAX is imported here, so ``--help`` answers at once.

A config is a frozen dataclass whose fields are made by :func:`param` (default, help text, checks). Its
module (``experiments/configs/<script>.py``) defines ``Config``, ``NAMES`` (the named recipes, possibly
none) and ``get_config(name=None, **selectors)``, the config named ``name`` or the default of the selector
values given (e.g. ``family``, ``dataset``).
:func:`parse` turns that into the script's command line:

* ``--config NAME`` and the selector fields (``select=True``) choose the base config; its values are the
  defaults shown by ``--help``;
* every field is an override ``--field-name VALUE`` (tuples take several values, booleans ``--x / --no-x``),
  checked by its metadata (``ge``, ``gt``, ``lt``, ``choices``; ``applies``: only meaningful for some values
  of another field), then the whole config by its ``__post_init__``;
* the fields of an options dataclass (:class:`RunOptions` by default: ``--out``, ``--resume``,
  ``--overwrite`` ...) say where and how to run, not what;
* with ``owned=``, the run directory is checked (and with ``--overwrite`` cleared) by
  ``common.prepare_run_dir`` before anything else is written.

Every refusal is an argparse error (exit status 2) that names the option.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any


def param(default: Any, help: str, *, choices=None, ge=None, gt=None, lt=None, applies=None, train: bool = True,
          select: bool = False, required: bool = False, noun: str = "value", flag: bool = False,
          exclusive: str | None = None) -> Any:  # fmt: skip
    """A config field: ``default`` (immutable: tuples, not lists), a ``help`` text, and its checks.

    ``ge`` / ``gt`` / ``lt``: bounds of a number (of each element of a tuple); ``choices``: allowed values (of
    each element); ``applies={"family": ("rectified",)}``: giving the option is an error unless that field
    has one of those values; ``train=False``: the field does not change the trained parameters (left out of
    ``config.json``, so a resumed run may change it); ``select=True``: the field selects the base config;
    ``required``: a selector that must be given unless ``--config`` is; ``noun``: the word in "unknown
    <noun>"; ``flag``: a ``store_true`` option; ``exclusive``: options sharing this name exclude each other.
    """
    if isinstance(default, (list, dict, set)):
        raise TypeError(f"param default must be immutable (a tuple, not a {type(default).__name__}).")
    meta = dict(help=help, choices=tuple(choices) if choices is not None else None, ge=ge, gt=gt, lt=lt,
                applies=dict(applies or {}), train=train, select=select, required=required, noun=noun,
                flag=flag, exclusive=exclusive)  # fmt: skip
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where and how a training script runs (not part of the recipe)."""

    out: Path = param(None, "run directory: results.json, pictures, config.json, metrics.jsonl, checkpoints/",
                      required=True)  # fmt: skip
    resume: bool = param(False, "continue an unfinished run in --out from its latest checkpoint", flag=True,
                         exclusive="mode")  # fmt: skip
    overwrite: bool = param(False, "delete a previous run in --out and start afresh", flag=True, exclusive="mode")
    checkpoint_every: int | None = param(None, "checkpoint every N steps (default: only the one always "
                                        "written at the end)", ge=1)  # fmt: skip
    quiet: bool = param(False, "no progress display (the final results are still printed)", flag=True)
    break_lock: bool = param(False, "take --out even if its lock names a job that seems alive (make sure it is not "
                             "running: two jobs writing one run directory corrupt it)", flag=True)  # fmt: skip

    def run_kwargs(self) -> dict:
        """The keyword arguments of a script's ``run(config, workdir, **kwargs)``."""
        return dict(resume=self.resume, checkpoint_every=self.checkpoint_every, quiet=self.quiet,
                    break_lock=self.break_lock)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """Where a script that trains nothing to continue (a benchmark, a sampler table) writes ``results.json``;
    ``--resume`` / ``--overwrite`` / ``--quiet`` mean what they mean for the training scripts."""

    out: Path = param(None, "output folder (results.json)", required=True)
    resume: bool = param(False, "--out holds finished results: show them instead of running again", flag=True,
                         exclusive="mode")  # fmt: skip
    overwrite: bool = param(False, "replace earlier results in --out", flag=True, exclusive="mode")
    quiet: bool = param(False, "print nothing (the results are in --out/results.json)", flag=True)


def earlier_results(opts: OutputOptions, script: str) -> dict | None:
    """The results already in ``opts.out`` when ``--resume`` asks to show them; None when the script should
    run (no results yet, or ``--overwrite``); otherwise exit with an error naming both flags."""
    import json

    done = Path(opts.out) / "results.json"
    if not done.is_file() or opts.overwrite:
        return None
    if opts.resume:
        return json.loads(done.read_text())
    raise SystemExit(f"{script}: error: --out {opts.out} holds earlier results ({done.name}); pass --resume to show "
                     "them or --overwrite to run again")  # fmt: skip


def output_main(
    configs: types.ModuleType,
    argv: list[str] | None,
    *,
    doc: str | None,
    script: str,
    run: typing.Callable[[Any, Any], dict],
    show: typing.Callable[[dict, bool], None],
) -> dict:
    """The ``main`` of a script that writes ``results.json`` into ``--out`` and has no run to continue (a
    benchmark, a sampler table): parse ``configs`` (its ``Options`` are :class:`OutputOptions`), then either
    ``show(results, quiet)`` the earlier results (``--resume``; each script says what ``--quiet`` leaves) or
    ``run(config, opts)``."""
    config, opts = parse(configs, argv, doc=doc, options=configs.Options)
    earlier = earlier_results(opts, script)
    if earlier is None:
        return run(config, opts)
    show(earlier, opts.quiet)
    return earlier


def show_json(results: dict, quiet: bool) -> None:
    """Print ``results`` as indented JSON unless ``quiet`` (the ``show`` of scripts with no table of their own)."""
    import json

    if not quiet:
        print(json.dumps(results, indent=1))


def quiet_if(quiet: bool):
    """A context that swallows stdout when ``quiet`` (for scripts whose work prints its tables)."""
    import contextlib
    import io

    return contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()


# ---- values ---------------------------------------------------------------------------------------


def check_value(name: str, value: Any, meta: dict) -> None:
    """Raise ValueError naming ``name`` when ``value`` (or an element of a tuple) breaks the metadata checks."""
    bounds = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b), "lt": ("<", lambda v, b: v < b)}
    for v in value if isinstance(value, tuple) else (value,):
        if v is None or isinstance(v, bool):
            continue
        if meta["choices"] is not None and v not in meta["choices"]:
            raise ValueError(
                f"{name}: unknown {meta['noun']} {v!r}; choose from {', '.join(map(str, meta['choices']))}"
            )
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{name}: expected a finite number, got {v}")
        for op, (symbol, ok) in bounds.items():
            if meta[op] is not None and isinstance(v, (int, float)) and not ok(v, meta[op]):
                kind = "an integer" if isinstance(v, int) else "a number"
                raise ValueError(f"{name}: expected {kind} {symbol} {meta[op]}, got {v}")


def _is(value: Any, kind: type) -> bool:
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if kind is float else (str, Path) if kind is Path else kind)


def check_type(name: str, value: Any, annotation: Any) -> None:
    """Raise TypeError naming ``name`` unless ``value`` fits the field's annotation (``int``, ``float``
    (ints too), ``str``, ``bool``, ``X | None``, ``tuple[X, ...]``, ``tuple[X, X]``)."""
    kind, nargs = _base_type(annotation)
    if value is None and type(None) in typing.get_args(annotation):
        return
    ok = _is(value, kind) if nargs is None else (
        isinstance(value, tuple) and nargs in ("*", len(value)) and all(_is(v, kind) for v in value))  # fmt: skip
    if not ok:
        want = kind.__name__ if nargs is None else f"a tuple of {'' if nargs == '*' else nargs} {kind.__name__}"
        raise TypeError(f"{name}: expected {want}, got {value!r}")


def validate(config: Any) -> None:
    """Check every field of ``config`` against its annotation and its :func:`param` metadata (TypeError or
    ValueError naming the option); the ``__post_init__`` of each config calls it."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        if "help" in f.metadata:
            check_type(option(f.name), getattr(config, f.name), hints[f.name])
            check_value(option(f.name), getattr(config, f.name), f.metadata)


def train_dict(config: Any) -> dict:
    """The fields that determine the trained parameters (``train=True``), as stored in ``config.json``."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.metadata.get("train", True)}


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(annotation) -> tuple[type, Any]:
    """(element type, nargs) of a field annotation: ``int``, ``int | None``, ``tuple[int, ...]``, ``tuple[float, float]``."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return _base_type(next(a for a in args if a is not type(None)))
    if typing.get_origin(annotation) is tuple:
        return args[0], "*" if len(args) == 2 and args[1] is Ellipsis else len(args)
    return annotation, None


def _converter(name: str, kind: type, meta: dict, elements: bool):
    """argparse ``type``: ``kind(text)`` checked by the metadata. For a tuple field (``elements``) the text
    may hold several comma-separated values (a list, flattened by :func:`parse`) whose choices are checked
    here; argparse checks a scalar's choices itself (and says "invalid choice")."""

    def one(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        try:
            check_value(name, value, meta if elements else {**meta, "choices": None})
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).split(": ", 1)[1]) from None
        return value

    def convert(text: str):
        return [one(t) for t in text.split(",") if t] if elements and kind is not Path else one(text)

    convert.__name__ = kind.__name__  # argparse names the type in its own messages
    return convert


def _show(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _add_field(parser, f: dataclasses.Field, annotation, default: Any, groups: dict, required: bool) -> None:
    meta, name = f.metadata, option(f.name)
    kind, nargs = _base_type(annotation)
    help_text = meta["help"]
    for other, values in meta["applies"].items():
        help_text += (
            f" [only with {option(other)}" + ("" if values == (True,) else " " + "/".join(map(str, values))) + "]"
        )
    if not (required or default is None or meta["flag"]):
        help_text += f" (default: {_show(default)})"
    if meta["exclusive"]:
        if meta["exclusive"] not in groups:
            groups[meta["exclusive"]] = parser.add_mutually_exclusive_group()
        parser = groups[meta["exclusive"]]
    kw: dict = {"default": argparse.SUPPRESS, "help": help_text.replace("%", "%%")}
    if kind is bool:
        parser.add_argument(name, action="store_true" if meta["flag"] else argparse.BooleanOptionalAction, **kw)
        return
    if meta["choices"] is not None and nargs is None:
        kw["choices"] = meta["choices"]
    elif meta["choices"] is not None:
        kw.update(metavar=meta["noun"].upper(), help=kw["help"] + f"; from {', '.join(map(str, meta['choices']))}")
    parser.add_argument(
        name, type=_converter(name, kind, meta, nargs is not None), nargs=nargs, required=required, **kw
    )


def _add_fields(parser, cls, base, named: bool = False) -> None:
    """One option per :func:`param` field of ``cls``, with ``base``'s values as defaults (the class defaults
    when ``base`` is None); a required selector is optional when ``--config`` names the recipe."""
    hints, groups = typing.get_type_hints(cls), {}
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            default = getattr(base, f.name) if base is not None else f.default
            _add_field(parser, f, hints[f.name], default, groups, f.metadata["required"] and not named)


# ---- the command line -----------------------------------------------------------------------------


def _selectors(module) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(module.Config) if f.metadata.get("select")]


def _base(module, argv: list[str]) -> tuple[Any, str | None, bool]:
    """(base config, the error that refused it or None, whether ``--config`` named it) from ``argv``.

    Selector values the full parser will refuse are ignored here; without the required selectors (and
    without ``--config``) the base is ``Config()``, which ``--help`` then shows."""
    pre = argparse.ArgumentParser(add_help=False)
    names = tuple(module.NAMES)
    if names:
        pre.add_argument("--config")
    hints, fields = typing.get_type_hints(module.Config), _selectors(module)
    for f in fields:
        bool_field = _base_type(hints[f.name])[0] is bool
        pre.add_argument(option(f.name), action=argparse.BooleanOptionalAction if bool_field else "store")
    known, _ = pre.parse_known_args(argv)
    name = getattr(known, "config", None)
    picks = {}
    for f in fields:
        value = getattr(known, f.name)
        if value is not None and (f.metadata["choices"] is None or value in f.metadata["choices"]):
            picks[f.name] = value
    if name not in (None, *names) or (
        name is None and any(f.metadata["required"] and f.name not in picks for f in fields)
    ):
        return module.Config(), None, name is not None
    try:
        return module.get_config(name, **picks), None, name is not None
    except ValueError as err:
        return module.Config(), str(err), name is not None


def build_parser(module, argv: list[str], *, doc: str | None = None, options=None):
    """(the full parser, the base config, the error that refused the selected base or None): run options,
    then ``--config`` and one option per config field, with the defaults of the base config that
    ``--config`` and the selectors in ``argv`` choose."""
    base, error, named = _base(module, argv)
    prog = module.__name__.rsplit(".", 1)[-1] + ".py"  # the script of the config module, also under -m
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if options is not None:
        _add_fields(p.add_argument_group("run"), options, None)
    picked = " ".join(f"{option(f.name)} {getattr(base, f.name)}" for f in _selectors(module))
    group = p.add_argument_group(f"config (defaults shown: the recipe of {picked})" if picked else "config")
    names = tuple(module.NAMES)
    if names:
        group.add_argument(
            "--config",
            choices=names,
            default=argparse.SUPPRESS,
            metavar="NAME",
            help="a named recipe, the options given beside it override it (default: none, the recipe the selectors "
            "choose): " + ", ".join(names),
        )
    _add_fields(group, module.Config, base, named)
    return p, base, error


def parse(module, argv: list[str] | None = None, *, doc: str | None = None, options=RunOptions,
          owned: tuple[str, ...] | None = None, check=None):  # fmt: skip
    """``(config, options)`` from the command line ``argv`` (``sys.argv[1:]`` when None); see the module docstring.

    ``module``: the config module; ``doc``: the script's description for ``--help``; ``options``: the
    dataclass of the run options (None: none); ``owned``: the entries the script writes in ``--out``, to check
    the run directory with ``common.prepare_run_dir`` (and clear it on ``--overwrite``); ``check(config)``:
    raises ValueError on inputs that need more than the config to judge (files), before the run directory.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, base, error = build_parser(module, argv, doc=doc, options=options)
    given = vars(parser.parse_args(argv))
    if error is not None:
        parser.error(error)
    given.pop("config", None)
    opts = None
    if options is not None:
        names = {f.name for f in dataclasses.fields(options)}
        opts = options(**{k: _flat(v) if isinstance(v, list) else v for k, v in
                          ((k, given.pop(k)) for k in list(given) if k in names)})  # fmt: skip
    try:
        config = dataclasses.replace(base, **{k: _flat(v) if isinstance(v, list) else v for k, v in given.items()})
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    for f in dataclasses.fields(config):
        for other, values in f.metadata.get("applies", {}).items():
            if f.name in given and getattr(config, other) not in values:
                want = option(other) if values == (True,) else f"{option(other)} {'/'.join(map(str, values))}"
                parser.error(f"{option(f.name)} only applies to {want}")
    try:
        if check is not None:
            check(config)
    except ValueError as err:
        parser.error(str(err))
    if owned is not None:
        _check_run_dir(parser, config, opts, owned)
    return config, opts


def _flat(values: list) -> tuple:
    """The values of a tuple option: each token gave one value or a list of comma-separated ones."""
    return tuple(x for v in values for x in (v if isinstance(v, list) else [v]))


_PYTHON_SPELLINGS = (
    (re.compile(r"break_lock=True in Python, (--break-lock) on an experiment's command line"), r"\1"),
    (re.compile(r"\b\w+=True \((--[\w-]+)\)"), r"\1"),
    (re.compile(r"\(\w+=True / (--[\w-]+)\)"), r"(\1)"),
    (re.compile(r"\bresume=True\b"), "--resume"),
)


def flags_only(message: str) -> str:
    """A library message as the command line should say it: ``--resume``, not ``resume=True (--resume)``."""
    for pattern, repl in _PYTHON_SPELLINGS:
        message = pattern.sub(repl, message)
    return message


def run_or_exit(script: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, with a run-directory refusal raised while it runs (a lock taken meanwhile, a
    resume with another setup) turned into the script's error message in command-line terms (exit 2)."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        from genmodels.errors import RunDirectoryError  # JAX is imported by now

        if isinstance(err, RunDirectoryError):
            print(f"{script}: error: {flags_only(str(err))}", file=sys.stderr)
            raise SystemExit(2) from None
        raise


def _check_run_dir(parser, config, opts, owned) -> None:
    from experiments import common

    try:
        common.prepare_run_dir(opts.out, resume=opts.resume, overwrite=opts.overwrite, owned=owned,
                               config=train_dict(config), break_lock=opts.break_lock)  # fmt: skip
    except common.RunDirError as err:
        parser.error(flags_only(str(err)))
    except OSError as err:
        parser.error(f"--out {opts.out}: {err.strerror or err}")
