"""The live pipeline (no Qt): ``settings`` (validated settings, TOML config), ``decision``
(running prediction), ``frames`` (integrator stage), ``engine`` (network stepping, membrane
clears, :func:`~livegesture.pipeline.engine.decide_stream`), ``queues`` (bounded queues and
their drop policy), ``runner`` (:class:`~livegesture.pipeline.runner.Pipeline`: the three
threads) and ``recorder`` (aedat4 recording with marked gestures)."""
