"""Offline accuracy checks: per-sample (the reference deployment, gesture by gesture) and
streaming (the live pipeline's decisions over a continuous recording), and the tuning of
the live pipeline's window settings.

See :mod:`~livegesture.evaluate.metrics` for exactly how each number is scored.
"""
