"""kdtui: a terminal experiment manager for knowledge-distillation research."""

__version__ = "0.1.0"
