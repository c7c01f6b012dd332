"""Detectors: one sub-package each, listed in ``agent.registry``."""
