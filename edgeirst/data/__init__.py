"""Datasets: SIRST-family folders, COCO annotations, dataset checks, synthetic infrared.

numpy + OpenCV only (this is on the runtime path: the ``synthetic://`` source uses ``synth``).
"""

from edgeirst.data.synth import SynthConfig, SynthSequence, synth_image, write_dataset

__all__ = ["SynthConfig", "SynthSequence", "synth_image", "write_dataset"]
