"""``edgeirst data``: check a dataset, write COCO boxes, generate synthetic infrared data."""

from __future__ import annotations

from pathlib import Path

import click

from edgeirst.cli.options import MAX_SIDE, parse_range
from edgeirst.data.check import check_dataset
from edgeirst.data.coco import write_coco
from edgeirst.data.sirst import SirstDataset
from edgeirst.data.synth import SynthConfig, write_dataset
from edgeirst.errors import EdgeirstError
from edgeirst.io import refuse_input_as_output


@click.group(name="data")
def command() -> None:
    """Inspect datasets, write COCO annotations, generate synthetic IR data."""


@command.command(name="check")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(root: Path, as_json: bool) -> None:
    """Statistics and problems of the dataset in ROOT.

    Counts images, masks and targets, target-size percentiles, image sizes, pixel types and
    splits, then lists every problem found; exits 2 when there is any."""

    report = check_dataset(root, progress=not as_json)
    click.echo(report.to_json() if as_json else report.format())
    if not report.ok:
        raise EdgeirstError(f"{len(report.problems)} problem(s) found in {root}; "
                            "fix the files listed above (`problem:` lines / the JSON `problems`)")


@command.command(name="coco")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--split", default=None, help="Split to convert (e.g. train, val, idx_427/val); default: all images with masks.")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="COCO JSON file to write.")
def coco(root: Path, split: str | None, out: Path) -> None:
    """Write COCO boxes of the dataset in ROOT.

    One box per 8-connected mask component, category `target`; loads with pycocotools."""

    dataset = SirstDataset(root, split)
    refuse_input_as_output(out, *(dataset.image_path(i) for i in dataset.ids), *(dataset.mask_path(i) for i in dataset.ids),
                           dataset.split_file)
    result = write_coco(dataset, out, progress=True)
    click.echo(f"wrote {out}: {len(result['images'])} images, {len(result['annotations'])} targets")


@command.command(name="synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--images", required=True, type=click.IntRange(min=1), help="Number of images to generate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same dataset).")
@click.option("--height", default=256, show_default=True, type=click.IntRange(16, MAX_SIDE), help="Image height in pixels.")
@click.option("--width", default=320, show_default=True, type=click.IntRange(16, MAX_SIDE), help="Image width in pixels.")
@click.option("--bit-depth", default="8", show_default=True, type=click.Choice(["8", "16"]), help="Pixel depth (16 = 14-bit counts).")
@click.option("--background", default="mixed", show_default=True,
              type=click.Choice(["cloud", "sea", "ground", "mixed"]), help="Clutter kind.")
@click.option("--targets", default="1-3", show_default=True, help="Targets per image: N or MIN-MAX.")
@click.option("--scr", default="3-8", show_default=True, help="Targets' signal-to-clutter ratio MIN-MAX (`edgeirst demo` uses 8-15).")
@click.option("--sizes", default="1-4", show_default=True, help="Targets' PSF sigma in pixels MIN-MAX (minor axis of elongated ones).")
@click.option("--overwrite", is_flag=True,
              help="Write into a non-empty OUT: files of the same names are replaced, other files stay.")
def synth(out: Path, images: int, seed: int, height: int, width: int, bit_depth: str, background: str, targets: str,
          scr: str, sizes: str, overwrite: bool) -> None:
    """Generate a synthetic dataset in OUT.

    SIRST layout (images/, masks/<id>_pixels0.png, idx_synth/{train,val}.txt) that
    `edgeirst train` and `edgeirst data check` read like real data."""

    cfg = SynthConfig(height=height, width=width, targets=_range(targets), background=background,
                      bit_depth=int(bit_depth), seed=seed, scr=_positive_range(scr, "--scr"),
                      sizes=_positive_range(sizes, "--sizes"))
    write_dataset(out, cfg, images, progress=True, overwrite=overwrite)
    click.echo(f"wrote {images} images to {out} (splits in {out / 'idx_synth'})")


def _range(text: str) -> tuple[int, int]:
    return parse_range(text, "--targets", int)


def _positive_range(text: str, option: str) -> tuple[float, float]:
    lo, hi = parse_range(text, option)
    if lo <= 0:
        raise EdgeirstError(f"{option} {text!r}: values must be greater than 0")
    return lo, hi
