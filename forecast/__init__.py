"""Probabilistic forecasting of gridded spatio-temporal fields.

The package is laid out by concept: ``field_store`` (opening and checking field stores), ``data`` (training windows),
``diffusion`` (the diffusion math), ``models`` (networks), ``training``, ``rollout``, ``metrics`` and
``plots``; ``cli`` is a thin command-line front end over all of them.
"""

__version__ = "0.1.0"
