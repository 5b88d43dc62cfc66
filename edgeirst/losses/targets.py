"""Training targets from per-target boxes: CenterNet heatmaps, YOLOv5 anchor matches and the
anchor-free multi-scale (DotD / CIoU) task-aligned assignment. torch only.

Boxes are the collate's ``[x1, y1, x2, y2]`` in input pixels with exclusive right/bottom edges.
Coordinate conventions follow the decoders in ``edgeirst.postprocess``: CenterNet cells are
pixel-index positions (cell j at j * stride, a target's centre is its mean pixel index
((x1 + x2 - 1) / 2)); YOLO grids use edge coordinates (cell i spans [i, i+1) * stride, anchor
points at (i + 0.5) * stride, a box centre is (x1 + x2) / 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


# --- CenterNet -------------------------------------------------------------------------------

def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's ``gaussian_radius``: the smallest of the three corner-shift radii for which a
    box of this size keeps IoU >= ``min_overlap`` (the reference's formulas, quirks included)."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def gaussian_sigma(radius: int) -> float:
    """Gaussian sigma for an integer radius: diameter / 6, as CenterNet."""
    return (2 * radius + 1) / 6


def draw_gaussian(heatmap: torch.Tensor, cx: int, cy: int, radius: int) -> None:
    """Max a (2r+1)^2 Gaussian with peak 1 into ``heatmap`` (HxW) at (cx, cy), clipped at the edges."""
    h, w = heatmap.shape
    sigma = gaussian_sigma(radius)
    r = torch.arange(-radius, radius + 1, dtype=heatmap.dtype, device=heatmap.device)
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    x0, x1 = max(0, cx - radius), min(w, cx + radius + 1)
    y0, y1 = max(0, cy - radius), min(h, cy + radius + 1)
    patch = g[y0 - cy + radius:y1 - cy + radius, x0 - cx + radius:x1 - cx + radius]
    region = heatmap[y0:y1, x0:x1]
    region.copy_(torch.maximum(region, patch))


@dataclass
class CenterNetTargets:
    """``heatmap`` Bx1xHxW; for the N targets: ``index`` (b, y, x) of the centre cells, ``wh``
    Nx2 in input pixels, ``offset`` Nx2 sub-cell centre offsets."""

    heatmap: torch.Tensor
    index: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    wh: torch.Tensor
    offset: torch.Tensor


def centernet_targets(boxes: list[torch.Tensor], size: tuple[int, int], stride: float = 1.0,
                      min_overlap: float = 0.7) -> CenterNetTargets:
    """Gaussian heatmaps (size-adaptive radius from the box size in cells), wh and offset at centres."""
    h, w = size
    device = boxes[0].device if boxes else torch.device("cpu")
    heatmap = torch.zeros(len(boxes), 1, h, w, device=device)
    idx, whs, offs = [], [], []
    for b, bx in enumerate(boxes):
        for x1, y1, x2, y2 in bx.tolist():
            bw, bh = x2 - x1, y2 - y1
            if bw <= 0 or bh <= 0:
                continue
            cx, cy = (x1 + x2 - 1) / 2 / stride, (y1 + y2 - 1) / 2 / stride
            ix, iy = min(max(int(math.floor(cx)), 0), w - 1), min(max(int(math.floor(cy)), 0), h - 1)
            radius = max(0, int(gaussian_radius(bh / stride, bw / stride, min_overlap)))
            draw_gaussian(heatmap[b, 0], ix, iy, radius)
            idx.append((b, iy, ix))
            whs.append((bw, bh))
            offs.append((cx - ix, cy - iy))
    index = torch.tensor(idx, dtype=torch.long, device=device).reshape(-1, 3).unbind(1)
    return CenterNetTargets(heatmap, index, torch.tensor(whs, device=device).reshape(-1, 2),
                            torch.tensor(offs, device=device).reshape(-1, 2))


# --- YOLOv5 (anchor-based) -------------------------------------------------------------------

@dataclass
class AnchorMatches:
    """One level's matches: indices (b, a, gj, gi), ``box`` Nx4 (x, y offset from the cell corner,
    w, h; grid units) and ``anchor`` Nx2 (grid units)."""

    b: torch.Tensor
    a: torch.Tensor
    gj: torch.Tensor
    gi: torch.Tensor
    box: torch.Tensor
    anchor: torch.Tensor


_NEIGHBOURS = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32)


def yolov5_targets(boxes: list[torch.Tensor], shapes: list[tuple[int, int]], strides: list[float],
                   anchors: list[torch.Tensor], anchor_t: float = 4.0, g: float = 0.5) -> list[AnchorMatches]:
    """YOLOv5 ``build_targets``: per level, a target matches every anchor (``anchors[k]`` Ax2 in
    pixels) whose width and height ratios are within ``anchor_t``, in its own cell and in the two
    neighbouring cells nearest its centre (offset ``g``), as in YOLOv5."""
    device = anchors[0].device
    rows = [torch.cat([torch.full((len(bx), 1), float(b), device=device), bx.to(device).float()], 1)
            for b, bx in enumerate(boxes)]
    t = torch.cat(rows) if rows else torch.zeros(0, 5, device=device)
    t = t[(t[:, 3] > t[:, 1]) & (t[:, 4] > t[:, 2])]
    centre, size = (t[:, 1:3] + t[:, 3:5]) / 2, t[:, 3:5] - t[:, 1:3]
    off = _NEIGHBOURS.to(device) * g
    out = []
    for (h, w), s, anc in zip(shapes, strides, anchors):
        anc = anc.to(device).float().view(-1, 2) / s
        r = (size / s)[None] / anc[:, None]  # A x N x 2
        a_idx, n_idx = (torch.max(r, 1 / r).amax(-1) < anchor_t).nonzero(as_tuple=True)
        gxy, gwh, b = centre[n_idx] / s, size[n_idx] / s, t[n_idx, 0]
        gxi = torch.tensor([w, h], device=device, dtype=gxy.dtype) - gxy
        j, k = ((gxy % 1 < g) & (gxy > 1)).T
        l, m = ((gxi % 1 < g) & (gxi > 1)).T
        o_idx, sel = torch.stack([torch.ones_like(j), j, k, l, m]).nonzero(as_tuple=True)
        gxy, gwh, b, a = gxy[sel], gwh[sel], b[sel], a_idx[sel]
        gij = (gxy - off[o_idx]).long()
        out.append(AnchorMatches(b.long(), a, gij[:, 1].clamp(0, h - 1), gij[:, 0].clamp(0, w - 1),
                                 torch.cat([gxy - gij, gwh], 1), anc[a]))
    return out


# --- anchor-free, multi-scale (MLSA-YOLOv8) --------------------------------------------------

def anchor_points(shapes: list[tuple[int, int]], strides: list[float], device=None,
                  dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres of every level, concatenated: (A x 2 points in pixels, A strides)."""
    pts, st = [], []
    for (h, w), s in zip(shapes, strides):
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype),
                                indexing="ij")
        pts.append((torch.stack([xs, ys], -1).view(-1, 2) + 0.5) * s)
        st.append(torch.full((h * w,), float(s), device=device, dtype=dtype))
    return torch.cat(pts), torch.cat(st)


def pad_boxes(boxes: list[torch.Tensor], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """List of Kx4 -> (B x M x 4 zero-padded, B x M validity mask)."""
    m = max([len(b) for b in boxes] + [0])
    out = torch.zeros(len(boxes), m, 4, device=device)
    valid = torch.zeros(len(boxes), m, dtype=torch.bool, device=device)
    for i, b in enumerate(boxes):
        if len(b):
            out[i, :len(b)] = b.to(out)
            valid[i, :len(b)] = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return out, valid


@dataclass
class Assignment:
    """Per anchor: ``fg`` BxA positive mask, ``boxes`` BxAx4 assigned GT boxes (pixels),
    ``scores`` BxAxC soft class targets (the normalised alignment metric), ``gt_index`` BxA."""

    fg: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    gt_index: torch.Tensor


@torch.no_grad()
def multiscale_assign(pred_scores: torch.Tensor, pred_boxes: torch.Tensor, points: torch.Tensor,
                      point_strides: torch.Tensor, gt_boxes: torch.Tensor, gt_valid: torch.Tensor,
                      mean_size: float = 4.0, dotd_strides: tuple[float, ...] = (4, 8), topk: int = 10,
                      alpha: float = 0.5, beta: float = 6.0, radius: float = 1.0) -> Assignment:
    """Task-aligned assignment (Ultralytics ``TaskAlignedAssigner``) with MLSA's multi-scale overlap.

    overlap = DotD(pred, gt) on anchors of the ``dotd_strides`` levels, CIoU(pred, gt).clamp(0)
    elsewhere; align metric = score^alpha * overlap^beta. Candidates for a GT are the anchor
    points inside its box and, so that a target smaller than a cell still gets positives, the
    points within ``radius`` strides of its centre on every level (at least the cell holding the
    centre). Each GT takes its ``topk`` candidates by metric; an anchor claimed by several GTs
    keeps the one it overlaps most; soft targets = metric * max overlap / max metric per GT.
    Every valid GT gets a positive unless all its candidates are taken by GTs overlapping more.

    pred_scores BxAxC probabilities (class 0 is the target class), pred_boxes BxAx4 pixels,
    points Ax2, point_strides A, gt_boxes BxMx4, gt_valid BxM.
    """
    from edgeirst.losses.box import ciou, dotd  # here: edgeirst.losses imports this module

    bsz, n_anchor, n_cls = pred_scores.shape
    n_gt = gt_boxes.shape[1]
    if n_gt == 0 or not gt_valid.any():
        z = pred_scores.new_zeros
        return Assignment(torch.zeros(bsz, n_anchor, dtype=torch.bool, device=pred_scores.device),
                          z(bsz, n_anchor, 4), z(bsz, n_anchor, n_cls),
                          torch.zeros(bsz, n_anchor, dtype=torch.long, device=pred_scores.device))
    g = gt_boxes[:, :, None, :]  # B M 1 4
    px, py = points[:, 0], points[:, 1]
    inside = torch.stack([px - g[..., 0], py - g[..., 1], g[..., 2] - px, g[..., 3] - py], -1).amin(-1) > 1e-9
    reach = radius * point_strides
    near = ((px - (g[..., 0] + g[..., 2]) / 2).abs() <= reach) & ((py - (g[..., 1] + g[..., 3]) / 2).abs() <= reach)
    cand = (inside | near) & gt_valid[..., None]  # B M A

    p = pred_boxes[:, None]  # B 1 A 4
    use_dotd = torch.isin(point_strides, torch.tensor(dotd_strides, dtype=point_strides.dtype, device=points.device))
    overlaps = torch.where(use_dotd, dotd(p, g, mean_size), ciou(g, p).clamp(0)) * cand
    metric = pred_scores[..., 0][:, None].pow(alpha) * overlaps.pow(beta) * cand

    k = min(topk, n_anchor)
    top = torch.where(cand, metric, torch.full_like(metric, -1.0)).topk(k, dim=-1).indices
    pos = torch.zeros_like(cand).scatter_(-1, top, True) & cand
    multi = pos.sum(1, keepdim=True) > 1  # B 1 A
    if multi.any():
        best = torch.where(pos, overlaps, torch.full_like(overlaps, -1.0)).argmax(1)  # B A
        keep = torch.nn.functional.one_hot(best, n_gt).permute(0, 2, 1).bool()
        pos = torch.where(multi, keep & pos, pos)

    fg = pos.any(1)
    gt_index = pos.float().argmax(1)
    boxes = torch.gather(gt_boxes, 1, gt_index[..., None].expand(-1, -1, 4))
    align = metric * pos
    norm = (align * (overlaps * pos).amax(-1, keepdim=True) / (align.amax(-1, keepdim=True) + 1e-9)).amax(1)
    scores = pred_scores.new_zeros(bsz, n_anchor, n_cls)
    scores[..., 0] = norm * fg
    return Assignment(fg, boxes, scores, gt_index)
