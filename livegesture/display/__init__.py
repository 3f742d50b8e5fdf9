"""What the window and the terminal show, without Qt: :class:`~livegesture.display.state.DisplayState`
(built from the pipeline's updates), the ``timeline`` runs and the ``text`` both write."""
