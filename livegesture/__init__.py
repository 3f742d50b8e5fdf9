"""livegesture: real-time DVS gesture recognition on HiAER-Spike CRI neuromorphic hardware."""

__version__ = "0.1.0"
