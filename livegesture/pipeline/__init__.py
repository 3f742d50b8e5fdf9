"""The live pipeline (no Qt): ``settings`` (the settings' schema, validated, TOML config),
``options`` (the settings as command-line options), ``decision`` (running prediction),
``frames`` (integrator stage), ``engine`` (network stepping, membrane clears,
:func:`~livegesture.pipeline.engine.decide_stream`), ``switch`` (a backend or model change,
as a result), ``queues`` (bounded queues and their drop policy), ``stats`` (the figures),
``recent`` (events kept for the display), ``runner``
(:class:`~livegesture.pipeline.runner.Pipeline`: the three threads, and the
:class:`~livegesture.pipeline.runner.PipelineUpdate` it publishes) and ``recorder`` (aedat4
recording with marked gestures)."""
