"""One config module per experiment script: plain frozen dataclasses, no JAX.

Each module defines ``Config`` (fields made by ``experiments.cli.param``: default, help text, checks) and
``get_config(name=None, **selectors)``: the recipe named ``name`` (one of ``NAMES``, the rows of
``docs/results.md``), or the default recipe of the selector values (e.g. ``family`` and ``dataset``), which
is the recipe of that pair's published row. Change a recipe with ``dataclasses.replace(config, steps=100)``
or on the command line (``--steps 100``).
"""
