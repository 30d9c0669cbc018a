"""spmon: watch SmarterProctoring exam sessions, export metrics, deliver alerts."""

__version__ = "0.1.0"
