"""Labelled DVS128 gesture recordings without a camera.

A renderer draws a person (head, torso, two arms with upper arm, forearm and hand) in front
of a DVS128 performing the 11 DVS Gesture classes (:mod:`~livegesture.synth.gestures`,
:mod:`~livegesture.synth.body`); a DVS emulator turns the rendered log intensity into ON/OFF
events with threshold mismatch, refractory period, background activity, hot pixels and
mains flicker (:mod:`~livegesture.synth.dvs`); writers produce IBM's DVS Gesture folder
(AEDAT 3.1) and labelled aedat4 sessions (:mod:`~livegesture.synth.writers`). Everything
is deterministic from a seed (:mod:`~livegesture.synth.generate`).

Conventions: the subject's right arm appears on the sensor's left (the camera faces the
subject); "clockwise" is as seen on the sensor image displayed upright.
"""

from __future__ import annotations

from livegesture.synth.generate import Clip, ClipJob, SynthSettings, generate_clip
from livegesture.synth.gestures import CLASS_SLUGS, parse_class
from livegesture.synth.writers import make_session, write_dataset, write_recording

__all__ = ["CLASS_SLUGS", "Clip", "ClipJob", "SynthSettings", "generate_clip", "make_session", "parse_class",
           "write_dataset", "write_recording"]
