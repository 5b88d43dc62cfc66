"""Datasets: SIRST-family folders, COCO annotations, dataset checks, synthetic infrared.

numpy + OpenCV only (this is on the runtime path: the ``synthetic://`` source uses ``synth``).
"""

from edgeirst.data.check import CheckReport, check_dataset
from edgeirst.data.coco import to_coco, write_coco
from edgeirst.data.sirst import Sample, SirstDataset, find_splits, read_image, read_mask
from edgeirst.data.synth import SynthConfig, SynthSequence, synth_image, write_dataset

__all__ = [
    "CheckReport", "Sample", "SirstDataset", "SynthConfig", "SynthSequence", "check_dataset", "find_splits",
    "read_image", "read_mask", "synth_image", "to_coco", "write_coco", "write_dataset",
]
