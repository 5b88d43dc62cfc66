"""edgeirst: infrared small-target detectors from training to a live camera stream."""

__version__ = "0.1.0"
