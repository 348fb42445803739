"""Domain-randomised training of the channel models: tissue pool, painted samples, finetune on a pool, tumour outcome."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from medsynth_engine.addchannel import MIN_TUMOUR_ML, tumour_outcome
from medsynth_engine.errors import MedSynthError
from medsynth_engine.models.channelnet.randomise import RANGES, RandomisedSet, Ranges, paint
from medsynth_engine.models.channelnet.tissuepool import TENSOR_FILE, build_pool, load_pool, merge_pools
from medsynth_engine.nifti_io import read_nifti
from medsynth_engine.phantom.tissues import TISSUE_INDEX
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"
#: 8 mm voxels: the channel models' 192 x 224 x 192 mm field of view in 24 x 28 x 24, rendered in about a second.
SHAPE, SPACING = (24, 28, 24), 8.0


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """Two subjects with a tumour and one without, rendered in two parts and merged (as parallel builds are)."""
    root = tmp_path_factory.mktemp("pool")
    first = build_pool(root / "a", 2, 1, shape=SHAPE, spacing=SPACING)
    second = build_pool(root / "b", 1, 1, seed=99, shape=SHAPE, spacing=SPACING)
    return merge_pools([first, second], root / "merged")


def _subject(data, healthy: bool) -> tuple[torch.Tensor, torch.Tensor]:
    i = int(torch.nonzero(data.healthy == healthy)[0, 0])
    return data.fractions[i].float() / 255.0, data.labels[i]


def test_pool_holds_anatomy_and_labels_of_both_kinds_of_subject(pool):
    data = load_pool(pool)
    assert len(data) == 5 and data.healthy.tolist() == [False, False, True, False, True]
    assert data.fractions.shape == (5, 11, *SHAPE) and data.spacing == SPACING
    fractions = data.fractions.float() / 255.0
    # The ten tissue fractions fill every voxel (air makes up the rest; the phantom's head shells overlap at
    # a few edges, so a sum may exceed one there).
    total = fractions[:, :10].sum(1)
    assert float(total.min()) > 0.97 and float(((total - 1.0).abs() < 0.03).float().mean()) > 0.98
    assert (data.labels[data.healthy] == 0).all() and (data.labels[~data.healthy] > 0).flatten(1).any(1).all()
    assert set(np.unique(data.labels.numpy())) <= {0, 1, 2, 4}


def test_a_broken_pool_is_one_sentence(pool, tmp_path):
    broken = Path(shutil.copytree(pool, tmp_path / "broken"))
    (broken / TENSOR_FILE).write_bytes(b"not a tensor file")
    with pytest.raises(MedSynthError, match="cannot be read"):
        load_pool(broken)


def test_painted_cases_vary_in_contrast_and_keep_labels_ct_and_skull_choice(pool):
    data = load_pool(pool)
    fractions, labels = _subject(data, healthy=False)
    rng = torch.Generator().manual_seed(3)
    draws = [paint(fractions, labels, rng) for _ in range(12)]
    assert {d[3]["skull_off"] for d in draws} == {True, False}
    assert all(d[3]["sequences"] and set(d[3]["sequences"]) <= {"t1", "t1ce", "t2", "flair"} for d in draws)
    wm = fractions[TISSUE_INDEX["white_matter"]] > 0.9
    gm = fractions[TISSUE_INDEX["grey_matter"]] > 0.6
    contrasts = []
    for images, _labels, ct, drawn in draws:
        if not drawn["moved"] and "t1" in images:
            t1 = torch.from_numpy(images["t1"])
            if drawn["fov_cut"]:
                continue
            contrasts.append(float(t1[gm].mean() / t1[wm].mean()))
        assert float(ct.min()) >= -1024.0 and float(ct.max()) > 300.0  # air and bone in the CT target
        if drawn["skull_off"]:
            # Brain-extracted: nothing outside the (slightly eroded or dilated) brain mask.
            outside = torch.nn.functional.max_pool3d((fractions[-1] > 0.5).float()[None, None], 3, 1, 1)[0, 0] == 0
            if not drawn["moved"]:
                assert all(float(np.abs(image[outside.numpy()]).max()) == 0.0 for image in images.values())
    assert len(contrasts) >= 2 and max(contrasts) - min(contrasts) > 0.05  # grey/white contrast is drawn anew
    again = paint(fractions, labels, torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(again[0][draws[0][3]["sequences"][0]], draws[0][0][draws[0][3]["sequences"][0]])


def test_a_cut_field_of_view_is_air_in_the_ct_target_as_it_is_background_in_the_labels(pool):
    """The cut is the last draw: the same seed with and without it paints the same case, and only the slab the MR
    no longer shows differs, where the CT is air (a head left there taught mr2ct to paint tissue on empty input)."""
    data = load_pool(pool)
    fractions, labels = _subject(data, healthy=False)
    cut_somewhere = 0
    for seed in range(6):
        whole = paint(fractions, labels, torch.Generator().manual_seed(seed), Ranges(fov_cut_probability=0.0))
        cut = paint(fractions, labels, torch.Generator().manual_seed(seed), Ranges(fov_cut_probability=1.0))
        assert cut[3]["fov_cut"] and not whole[3]["fov_cut"]
        changed = cut[2] != whole[2]
        assert torch.all(cut[2][changed] == -1000.0)
        hidden = np.ones(labels.shape, dtype=bool)
        for image in cut[0].values():
            hidden &= image == 0.0
        assert bool(torch.from_numpy(hidden)[changed].all())  # the CT changed only where the MR shows nothing
        shown_before = np.zeros(labels.shape, dtype=bool)
        for name, image in whole[0].items():
            shown_before |= image != cut[0][name]
        assert torch.all(cut[2][torch.from_numpy(shown_before)] == -1000.0)  # where the cut hid the head, CT is air
        assert bool(changed[cut[1] != whole[1]].all()) and torch.all(cut[1][changed] == 0)  # and labels background
        cut_somewhere += int(changed.any())
    assert cut_somewhere >= 3  # most cuts reach the head


def test_tumour_contrast_to_white_matter_is_kept_where_it_marks_the_tumour_and_drawn_freely_in_t1():
    """Oedema brighter than white matter on FLAIR is what oedema is: in t1ce, t2 and flair the tumour tissues keep
    their physical ratio to white matter (within exp(N(0, 0.1))); in t1 and with anchoring turned off they do not."""
    from medsynth_engine.models.channelnet.randomise import TUMOUR_TISSUES, _tissue_means

    wm = TISSUE_INDEX["white_matter"]

    def log_ratios(sequence: str, ranges: Ranges) -> np.ndarray:
        rng = torch.Generator().manual_seed(7)
        physics = _tissue_means(sequence, rng, Ranges(contrast_log_sigma=0.0, tumour_contrast_log_sigma=0.0), 0.3)
        draws = torch.stack([_tissue_means(sequence, rng, ranges, 0.3) for _ in range(300)])
        return torch.log((draws[:, list(TUMOUR_TISSUES)] / draws[:, [wm]]) / (physics[list(TUMOUR_TISSUES)] / physics[wm])).numpy()

    for sequence in ("t1ce", "t2", "flair"):
        anchored = log_ratios(sequence, RANGES)
        assert np.abs(anchored).max() < 0.5 and 0.07 < anchored.std() < 0.13  # exp(N(0, 0.1)) around the physics
        assert log_ratios(sequence, Ranges(tumour_anchored_sequences=())).std() > 0.4  # free: 0.35 x sqrt(2)
    assert log_ratios("t1", RANGES).std() > 0.4
    oedema = TUMOUR_TISSUES.index(TISSUE_INDEX["oedema"])
    physics = _tissue_means("flair", torch.Generator(), Ranges(contrast_log_sigma=0.0, tumour_contrast_log_sigma=0.0), 0.3)
    darker = -float(torch.log(physics[TISSUE_INDEX["oedema"]] / physics[wm]))  # oedema under white matter on FLAIR
    assert darker < -0.5  # physically oedema is the brighter (1.9x)
    assert (log_ratios("flair", Ranges(tumour_anchored_sequences=()))[:, oedema] < darker).any()  # free draws reverse it
    assert not (log_ratios("flair", RANGES)[:, oedema] < darker).any()


def test_bias_fields_reach_beyond_what_the_phantoms_scans_draw():
    """The phantom's scans draw a bias field of log sd 0.03-0.2; training must cover that and go beyond it."""
    from medsynth_engine.models.channelnet.randomise import _acquire

    only_bias = Ranges(thick_slice_mm=(2.0, 2.0), in_plane_mm=(2.0, 2.0), partial_volume_blur_vox=(0.0, 0.0), gamma_log_sigma=0.0, noise_share=(0.0, 0.0))
    rng = torch.Generator().manual_seed(0)
    sds = [float(torch.log(_acquire(torch.ones(24, 28, 24), rng, only_bias)).std()) for _ in range(60)]
    assert max(sds) > 0.25 and 0.1 < float(np.mean(sds)) < 0.2 and min(sds) < 0.05  # uniform over 0-0.3


def test_grey_matter_stays_darker_than_oedema_where_the_tumour_contrast_is_kept():
    """Drawn freely, grey matter outshines the anchored oedema on FLAIR in about a fifth of the draws, and the blobs of
    grey matter (cerebellum, deep nuclei) look like oedema; kept within exp(N(0, 0.1)) of its ratio to white matter,
    it almost never does. On T1 (not anchored) it stays free."""
    from medsynth_engine.models.channelnet.randomise import _tissue_means

    gm, oedema, wm = TISSUE_INDEX["grey_matter"], TISSUE_INDEX["oedema"], TISSUE_INDEX["white_matter"]

    def draws(sequence: str, ranges: Ranges) -> torch.Tensor:
        rng = torch.Generator().manual_seed(3)
        return torch.stack([_tissue_means(sequence, rng, ranges, 0.3) for _ in range(400)])

    for sequence in ("t2", "flair"):
        kept = draws(sequence, RANGES)
        assert (kept[:, gm] >= kept[:, oedema]).float().mean() < 0.02
        assert 0.07 < torch.log(kept[:, gm] / kept[:, wm]).std() < 0.13
        free = draws(sequence, Ranges(brain_contrast_log_sigma=0.35 * 2**0.5))  # as drawn before: 0.35 for each of GM and WM
        assert (free[:, gm] >= free[:, oedema]).float().mean() > 0.1
    assert torch.log(draws("t1", RANGES)[:, gm] / draws("t1", RANGES)[:, wm]).std() > 0.4


def test_every_batch_holds_a_healthy_subject(pool):
    data = RandomisedSet(load_pool(pool), "seg", Ranges(fov_cut_probability=0.0, geometry_probability=0.0))
    rng = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, y = data.batch(rng, 2, 16)
        assert x.shape == (2, 8, 16, 16, 16) and y.shape == (2, 16, 16, 16)
        assert (y[-1] == 0).all()  # the healthy subject of the batch
        assert (x[:, 4:].flatten(2).amax(2) > 0).any(1).all()  # at least one sequence given in each sample


def test_a_recipe_pool_built_in_parts_is_the_parts_merged(pool, tmp_path):
    from medsynth_engine.weights.ship import build_recipe_pool

    grid = {"shape": list(SHAPE), "spacing": SPACING}  # as a recipe's JSON holds them
    spec = {"parts": [{"tumour_cases": 2, "healthy_cases": 1, **grid}, {"tumour_cases": 1, "healthy_cases": 1, "seed": 99, **grid}]}
    built, merged = load_pool(build_recipe_pool(tmp_path / "pool-x", spec)), load_pool(pool)
    assert torch.equal(built.fractions, merged.fractions) and torch.equal(built.labels, merged.labels)
    assert built.healthy.tolist() == merged.healthy.tolist() == [False, False, True, False, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool-x"]  # the parts are not left behind


def test_half_of_each_batch_is_healthy_and_at_least_one_sample_has_a_tumour(pool):
    data = RandomisedSet(load_pool(pool), "seg")
    rng = torch.Generator().manual_seed(0)
    assert [data.healthy_count(rng, b) for b in (2, 3, 4, 8)] == [1, 2, 2, 4]
    assert RandomisedSet(load_pool(pool), "seg", Ranges(healthy_share=0.9)).healthy_count(rng, 4) == 3  # one tumour sample stays
    assert RandomisedSet(load_pool(pool), "seg", Ranges(healthy_share=0.0)).healthy_count(rng, 4) == 1  # one healthy sample stays
    alone = [data.healthy_count(rng, 1) for _ in range(200)]
    assert set(alone) == {0, 1} and 60 < sum(alone) < 140  # batch 1: healthy or not at random, by the share


def test_finetune_on_a_pool_records_the_randomisation_in_the_card(pool, tmp_path):
    request = FinetuneRequest(
        data=pool, out=tmp_path / "seg", model="seg", steps=2, resolution=16, spacing=SPACING, width=4, batch_size=2, checkpoint_every=2
    )
    out = run_finetune(request)
    card = json.loads((out / "model.json").read_text())
    ranges = card["preprocessing"]["training"]["domain_randomisation"]
    assert ranges["thick_slice_mm"] == list(RANGES.thick_slice_mm) and ranges["healthy_share"] == RANGES.healthy_share
    assert ranges["tumour_anchored_sequences"] == ["t1ce", "t2", "flair"] and ranges["tumour_contrast_log_sigma"] == 0.1
    assert "tissue pool" in card["training_data"]
    assert card["preprocessing"]["training"]["sequence_dropout"]["t1_only_share"] == RANGES.t1_only_share
    losses = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert losses and all(np.isfinite(line["dice_ce"]) for line in losses)
    assert ranges["skull_off_probability"] == 0.5 and ranges["tumour_patch_share"] == RANGES.tumour_patch_share
    ct = run_finetune(FinetuneRequest.make(data=pool, out=tmp_path / "ct", model="mr2ct", steps=1, resolution=16, spacing=SPACING, width=4,
                                           batch_size=2, brain_extracted_share=0.3))
    assert np.isfinite(json.loads((ct / "loss.jsonl").read_text().splitlines()[-1])["l1"])
    # mr2ct's own ranges: the brain-extracted share it was given, patches not centred on tumours; the card says so.
    ct_ranges = json.loads((ct / "model.json").read_text())["preprocessing"]["training"]["domain_randomisation"]
    assert ct_ranges["skull_off_probability"] == 0.3 and ct_ranges["tumour_patch_share"] == 0.0
    assert ct_ranges["thick_slice_mm"] == ranges["thick_slice_mm"]
    with pytest.raises(MedSynthError, match="is at 8 mm"):
        run_finetune(FinetuneRequest(data=pool, out=tmp_path / "c", model="seg", steps=1, resolution=16, spacing=4.0, width=4, batch_size=2))


def test_tumour_outcome_counts_millilitres_per_label():
    codes = np.zeros((10, 10, 10), dtype=np.uint8)
    affine = np.diag([2.0, 2.0, 5.0, 1.0])  # 20 microlitres per voxel
    assert tumour_outcome(codes, affine) == {"tumour_found": False, "tumour_ml": 0.0, "tumour_ml_by_label": {"NCR": 0.0, "ED": 0.0, "ET": 0.0}}
    codes[:5, :5, :2] = 2  # 50 voxels: 1 ml of oedema
    codes[0, 0, 0] = 4
    outcome = tumour_outcome(codes, affine)
    assert outcome["tumour_ml_by_label"] == {"NCR": 0.0, "ED": 0.98, "ET": 0.02} and outcome["tumour_ml"] == 1.0
    assert outcome["tumour_found"] is (1.0 >= MIN_TUMOUR_ML)
    codes[:] = 0
    codes[0, 0, :10] = 1
    assert tumour_outcome(codes, affine)["tumour_found"] is False


@pytest.mark.slow
def test_cli_says_whether_a_tumour_was_found(make_phantom_set, tmp_path):
    data = make_phantom_set(n=1, shape=(24, 24, 24), spacing=6.0, channels="t1", seed=44, tumour=False)
    case = Path(shutil.copytree(next(p for p in data.iterdir() if p.is_dir()), tmp_path / "case"))
    done = subprocess.run([str(MEDSYNTH_BIN), "add-channel", "--channel", "seg", "--case", str(case)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    codes, affine = read_nifti(next(case.glob("*_seg.nii.gz")))
    outcome = tumour_outcome(codes, affine)
    last = done.stdout.strip().splitlines()[-1]
    if outcome["tumour_found"]:
        assert last.startswith(f"tumour found: {outcome['tumour_ml']:g} ml")
    else:
        assert last.startswith(f"no tumour found ({outcome['tumour_ml']:g} ml labelled in all")


@pytest.mark.slow
def test_shipped_seg_model_finds_no_tumour_in_a_healthy_real_head(tmp_path):
    """The MNI152 2009 T1 from nilearn's wheel (real, healthy, brain-extracted) at 2 mm, T1 alone: no tumour.

    The seg-phantom shipped before domain randomisation labelled 35 ml here (bench/results/add_channel.md).
    """
    import nibabel as nib
    from medsynth_engine.addchannel import AddChannelRequest, add_channel
    from medsynth_engine.nifti_io import write_nifti
    from medsynth_engine.phantom.atlas import nilearn_data_dir

    image = nib.load(str(nilearn_data_dir() / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"))
    affine = image.affine.copy()
    affine[:3, :3] *= 2.0
    head = tmp_path / "mni_t1.nii.gz"
    write_nifti(head, np.asarray(image.dataobj, dtype=np.float32)[::2, ::2, ::2], affine)
    result = add_channel(AddChannelRequest(case=head, channel="seg", device="cpu"))
    assert result["inputs"] == ["t1"] and result["tumour_found"] is False and result["tumour_ml"] < MIN_TUMOUR_ML, result
