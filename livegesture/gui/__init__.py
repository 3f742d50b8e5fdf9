"""The Qt window of livegesture (PySide6 + pyqtgraph): imported only by ``livegesture gui``
and ``livegesture demo`` with a display, so the rest of the package runs without Qt."""
