"""Experiment scripts built on genmodels, in the style of the flax examples.

Each script ``experiments/<name>.py`` is a short ``main`` that parses a config (``experiments/configs/<name>.py``,
plain frozen dataclasses) plus command-line overrides and calls ``run(config, workdir)``; the work itself lives
in ``experiments/_<name>.py``. Run a script as a module or as a file, from the checkout::

    python -m experiments.toy2d --family cfm --dataset moons --out runs/toy2d/cfm-moons
    python experiments/toy2d.py --family cfm --dataset moons --out runs/toy2d/cfm-moons

``experiments`` is a package of the editable install (``pip install -e .``), so neither needs ``sys.path``
edits. The config modules, ``experiments.cli`` and the name table ``experiments.catalog`` import no JAX, so
``--help`` answers at once.
"""
