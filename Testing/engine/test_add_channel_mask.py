"""add-channel with a brain mask: the case's own ``_mask`` (as ``medsynth prepare`` writes it) or one given.

A whole-head input with a mask must give exactly what the model gives on that input brain-extracted by hand,
with no label outside the mask; bad masks are one sentence naming the file, with nothing written.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from medsynth_engine.addchannel import AddChannelRequest, add_channel, find_brain_mask
from medsynth_engine.errors import MedSynthError
from medsynth_engine.jobs.kinds.add_channel import AddChannelParams
from medsynth_engine.nifti_io import read_nifti, write_nifti
from pydantic import ValidationError

pytestmark = pytest.mark.slow  # real seg model on rendered heads

MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"
SEQUENCES = ("t1", "t1ce", "t2", "flair")


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Path:
    """A healthy phantom head with skull and scalp (32^3 at 5 mm, four sequences) and its brain mask, as a case folder."""
    from medsynth_engine.phantom import AtlasLoader, Grid, draw_subject, render

    atlas = AtlasLoader().get()
    params = draw_subject(8900000, atlas, tumour=True)
    grid = Grid.centred((32, 32, 32), (5.0, 5.0, 5.0), atlas.brain_centre_mm + np.asarray(params.translation_mm))
    arrays = render(params, atlas, grid, (*SEQUENCES, "brain"), skull_strip=False)
    folder = tmp_path_factory.mktemp("head") / "head-001"
    folder.mkdir()
    for channel in SEQUENCES:
        write_nifti(folder / f"head-001_{channel}.nii.gz", arrays[channel], grid.affine)
    write_nifti(folder / "head-001_mask.nii.gz", arrays["brain"].astype(np.uint8), grid.affine)
    return folder


def _copy(head: Path, tmp_path: Path, *, mask: bool = True) -> Path:
    case = Path(shutil.copytree(head, tmp_path / head.name))
    if not mask:
        (case / "head-001_mask.nii.gz").unlink()
    return case


def _seg(case: Path, **kwargs) -> tuple[dict, np.ndarray]:
    result = add_channel(AddChannelRequest(case=case, channel="seg", device="cpu", replace=True, **kwargs))
    return result, read_nifti(case / f"{case.name}_seg.nii.gz")[0]


def test_the_cases_own_mask_brain_extracts_the_input_and_bounds_the_labels(head, tmp_path):
    case = _copy(head, tmp_path)
    mask_file = case / "head-001_mask.nii.gz"
    assert find_brain_mask("head-001", case) == mask_file
    result, labels = _seg(case, n4=False)  # N4 fits its field in the mask here, on Otsu's foreground by hand
    brain = read_nifti(mask_file)[0] > 0
    assert result["brain_mask"] == str(mask_file.resolve())
    assert labels.any() and not labels[~brain].any()

    stripped = _copy(head, tmp_path / "stripped", mask=False)  # the same head brain-extracted by hand
    for channel in SEQUENCES:
        path = stripped / f"head-001_{channel}.nii.gz"
        array, affine = read_nifti(path)
        write_nifti(path, np.where(brain, array, 0).astype(array.dtype), affine)
    by_hand, by_hand_labels = _seg(stripped, n4=False)
    assert by_hand["brain_mask"] is None
    by_hand_labels[~brain] = 0
    np.testing.assert_array_equal(labels, by_hand_labels)


def test_ct_keeps_the_whole_head_unless_a_mask_is_given(head, tmp_path):
    """A CT is made of the skull the whole-head MR shows: ct ignores the case's own mask, and uses one given."""
    case = _copy(head, tmp_path)
    own = add_channel(AddChannelRequest(case=case, channel="ct", device="cpu", out=tmp_path / "own"))
    assert own["brain_mask"] is None
    bare = add_channel(AddChannelRequest(case=_copy(head, tmp_path / "bare", mask=False), channel="ct", device="cpu", out=tmp_path / "bare-out"))
    np.testing.assert_array_equal(read_nifti(tmp_path / "own" / "head-001_ct.nii.gz")[0], read_nifti(tmp_path / "bare-out" / "head-001_ct.nii.gz")[0])
    mask_file = case / "head-001_mask.nii.gz"
    given = add_channel(AddChannelRequest(case=case, channel="ct", device="cpu", out=tmp_path / "given", brain_mask=mask_file))
    assert given["brain_mask"] == str(mask_file.resolve()) and bare["brain_mask"] is None
    assert not np.array_equal(read_nifti(tmp_path / "given" / "head-001_ct.nii.gz")[0], read_nifti(tmp_path / "own" / "head-001_ct.nii.gz")[0])


def test_no_brain_mask_sees_the_whole_head(head, tmp_path):
    with_mask_file = _copy(head, tmp_path / "a")
    without = _copy(head, tmp_path / "b", mask=False)
    result, labels = _seg(with_mask_file, no_brain_mask=True)
    assert result["brain_mask"] is None
    np.testing.assert_array_equal(labels, _seg(without)[1])


def test_a_mask_given_for_a_single_file(head, tmp_path):
    case = _copy(head, tmp_path)
    moved = tmp_path / "elsewhere_brain.nii.gz"
    shutil.move(case / "head-001_mask.nii.gz", moved)
    result = add_channel(AddChannelRequest(case=case / "head-001_t1.nii.gz", channel="seg", device="cpu", brain_mask=moved))
    assert result["brain_mask"] == str(moved.resolve()) and result["inputs"] == ["t1"]
    labels = read_nifti(case / "head-001_seg.nii.gz")[0]
    assert not labels[read_nifti(moved)[0] == 0].any()


@pytest.mark.parametrize(
    "kind, message",
    [
        ("grid", "resample the case's files onto one grid first"),
        ("empty", "is empty (no voxel above zero)"),
    ],
)
def test_a_bad_mask_is_one_sentence_and_nothing_is_written(head, tmp_path, kind, message):
    case = _copy(head, tmp_path)
    mask_file = case / "head-001_mask.nii.gz"
    array, affine = read_nifti(mask_file)
    if kind == "grid":
        write_nifti(mask_file, array[:-1], affine)
    else:
        write_nifti(mask_file, np.zeros_like(array), affine)
    before = sorted(p.name for p in case.iterdir())
    with pytest.raises(MedSynthError) as caught:
        add_channel(AddChannelRequest(case=case, channel="seg", device="cpu"))
    assert str(mask_file) in str(caught.value) and message in str(caught.value)
    assert sorted(p.name for p in case.iterdir()) == before


def test_a_mask_and_no_mask_together_are_refused(head, tmp_path):
    with pytest.raises(MedSynthError, match="not both"):
        add_channel(AddChannelRequest(case=head, channel="seg", brain_mask=head / "head-001_mask.nii.gz", no_brain_mask=True))
    with pytest.raises(ValidationError, match="not both"):
        AddChannelParams(case=str(head), channel="seg", brain_mask=str(head / "head-001_mask.nii.gz"), no_brain_mask=True)
    cli = subprocess.run([str(MEDSYNTH_BIN), "add-channel", "--channel", "seg", "--case", str(head), "--brain-mask", "m.nii.gz",
                          "--no-brain-mask"], capture_output=True, text=True)
    assert cli.returncode == 2 and "not allowed with argument" in cli.stderr


def test_cli_says_which_mask_it_used(head, tmp_path):
    case = _copy(head, tmp_path)
    cli = subprocess.run([str(MEDSYNTH_BIN), "add-channel", "--channel", "seg", "--case", str(case), "--device", "cpu"],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert f"inside the brain mask {(case / 'head-001_mask.nii.gz').resolve()}" in cli.stdout


def _whole_tumour_dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def test_n4_keeps_a_strong_bias_field_out_of_the_labels(head, tmp_path):
    """The same head under a strong smooth field per sequence (as a coil gives): with N4 (the seg default) the labels
    stay those of the clean head; the model alone on the biased input moves them."""
    clean, biased = _copy(head, tmp_path / "clean", mask=False), _copy(head, tmp_path / "biased", mask=False)
    for i, channel in enumerate(SEQUENCES):
        path = biased / f"head-001_{channel}.nii.gz"
        array, affine = read_nifti(path)
        u = [np.linspace(-1, 1, n) for n in array.shape]
        x, y, z = np.meshgrid(*u, indexing="ij")
        field = np.exp(0.5 * (np.cos(i) * x + np.sin(i) * y - 0.6 * z))
        write_nifti(path, (array * field).astype(np.float32), affine)
    result, reference = _seg(clean)
    assert result["n4"] is True and reference.any()
    with_n4, without = _seg(biased)[1], _seg(biased, n4=False)[1]
    assert _whole_tumour_dice(with_n4, reference) > 0.8
    assert _whole_tumour_dice(with_n4, reference) > _whole_tumour_dice(without, reference) + 0.05
