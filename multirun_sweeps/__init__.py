"""Sweep bundles and launcher presets, on Hydra's search path as pkg://multirun_sweeps."""
