"""Distillation from a segmentation teacher: the student's dense probability map (its ``seg``
output, or a saliency map such as Light-SGMTLM's) learns the teacher's probability map on the
same training crop, beside the student's own loss (``edgeirst train --teacher default``).

The teacher sees the crop under its own input normalisation (the batch is built with the
student's), runs in eval mode without gradients, and its map is average-pooled to the student
map's resolution. The term is the per-pixel binary cross-entropy against the teacher's soft
probabilities (Hinton-style soft targets): it carries where the teacher is unsure, which the
0/1 mask does not.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from edgeirst.checkpoint import load_checkpoint
from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta
from edgeirst.models import model_entry
from edgeirst.weights import resolve_model

DENSE_OUTPUTS = ("seg", "saliency")  # probability maps a student can learn a teacher's map with


def dense_output(outputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The student's dense probability map (Bx1xhxw), or None when it has none."""
    return next((outputs[k] for k in DENSE_OUTPUTS if k in outputs), None)


class Teacher:
    """A frozen segmentation model that maps a student-normalised batch to probabilities."""

    def __init__(self, name: str, student: ModelMeta, device: torch.device):
        model, meta, _ = load_checkpoint(resolve_model(name, "torch"))
        if "seg" not in meta.outputs:
            raise EdgeirstError(f"--teacher {name}: {meta.name} has no segmentation output ('seg'); "
                                "a teacher must be a segmentation model such as `default`")
        if meta.in_chans not in (1, student.in_chans):
            raise EdgeirstError(f"--teacher {name} takes {meta.in_chans} input channels, the student "
                                f"{student.in_chans}; use a teacher with 1 or {student.in_chans}")
        self.name, self.meta = name, meta
        self.divisor = meta.size_divisor
        channels_last = bool(getattr(model_entry(meta.name).preset, "channels_last", False))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(device, memory_format=self.memory_format)
        for p in self.model.parameters():
            p.requires_grad_(False)
        # student-normalised x -> unit image -> teacher-normalised: x * scale + shift
        s_mean, s_std = _grey(student.mean), _grey(student.std)
        t_mean, t_std = _grey(meta.mean), _grey(meta.std)
        self.scale, self.shift = s_std / t_std, (s_mean - t_mean) / t_std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher probabilities (Bx1xHxW) for a student-normalised batch x (BxCxHxW)."""
        h, w = x.shape[-2:]
        if h % self.divisor or w % self.divisor:
            raise EdgeirstError(f"--teacher {self.name} needs sides divisible by {self.divisor}; the crop is {w}x{h}")
        with torch.inference_mode():
            if self.meta.in_chans == 1 and x.shape[1] != 1:
                x = x.mean(1, keepdim=True)
            t = (x * self.scale + self.shift).contiguous(memory_format=self.memory_format)
            out = self.model(t)
            prob = out["seg"] if isinstance(out, dict) else out
        return prob.float().clone()  # out of inference mode, so the loss may use it


def _grey(values: Any) -> float:
    vals = [float(v) for v in values]
    return sum(vals) / len(vals)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the student's probability map against the teacher's, the
    teacher's map average-pooled (or resized) to the student's resolution."""
    if teacher.shape[-2:] != student.shape[-2:]:
        teacher = F.adaptive_avg_pool2d(teacher, student.shape[-2:])
    return F.binary_cross_entropy(student.float().clamp(1e-6, 1 - 1e-6), teacher.clamp(0.0, 1.0))
