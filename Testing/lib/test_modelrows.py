"""The panel's model lists come from the engine's /models rows (capabilities), not from lists of kinds (runs on 3.9)."""

from __future__ import annotations

from MedSynthLib.controller import PanelController
from MedSynthLib.modelrows import capabilities, follows_masks, is_generator, is_trainable

#: Rows as an engine with capabilities serves them (issue 13), including a family the GUI has never heard of.
NEW_ROWS = [
    {"id": "phantom", "family": "phantom", "kind": "procedural",
     "capabilities": {"mask": False, "inpaint": False, "channel": None, "dims": 3}},
    {"id": "my-unet-ddpm", "family": "ddpm3d", "kind": "diffusion",
     "capabilities": {"mask": True, "inpaint": False, "channel": None, "dims": 3}},
    {"id": "slices-2d", "family": "stylegan2d", "kind": "gan",
     "capabilities": {"mask": False, "inpaint": False, "channel": None, "dims": 2}},
    {"id": "seg-phantom", "family": "channelnet", "kind": "channel",
     "capabilities": {"mask": False, "inpaint": False, "channel": "seg", "dims": 3}},
    {"id": "broken-plugin", "error": "cannot load"},
]
#: Rows as engines before capabilities served them: a kind only.
OLD_ROWS = [{"id": "phantom", "kind": "procedural"}, {"id": "pgan3d-phantom", "kind": "gan"},
            {"id": "ldm3d-phantom", "kind": "diffusion"}, {"id": "seg-phantom", "kind": "segmentation"}]


def test_capabilities_are_read_from_new_rows_and_derived_for_old_ones():
    assert capabilities(NEW_ROWS[2])["dims"] == 2 and capabilities(NEW_ROWS[3])["channel"] == "seg"
    assert capabilities(OLD_ROWS[2]) == {"mask": True, "inpaint": True, "channel": None, "dims": 3, "trainable": True}
    assert [is_generator(r) for r in NEW_ROWS] == [True, True, True, False, False]
    assert [follows_masks(r) for r in NEW_ROWS] == [False, True, False, False, False]
    assert [is_trainable(r) for r in NEW_ROWS] == [False, True, True, True, False]


def test_the_panel_lists_follow_the_rows():
    controller = PanelController()
    controller.models = NEW_ROWS
    assert controller.generators() == ["phantom", "my-unet-ddpm", "slices-2d"]
    assert controller.tumour_models() == ["my-unet-ddpm"]  # any mask-conditioned family, not only ldm3d
    assert controller.finetune_bases() == ["slices-2d", "my-unet-ddpm", "seg-phantom"]
    controller.models = OLD_ROWS
    assert controller.generators() == ["phantom", "pgan3d-phantom", "ldm3d-phantom"]
    assert controller.tumour_models() == ["ldm3d-phantom"]
    assert controller.finetune_bases() == ["pgan3d-phantom", "ldm3d-phantom", "seg-phantom"]
    assert capabilities(OLD_ROWS[3])["channel"] == "seg"


def _rated(model_id: str, low: float, ratio: float) -> dict:
    return {"id": model_id, "kind": "gan", "capabilities": {"mask": False, "inpaint": False, "channel": None, "dims": 3},
            "validity": {"dice_ratio": ratio, "dice_ratio_ci": [low, ratio + 0.1], "precision": 0.71, "recall": 0.64,
                         "ms_ssim_synthetic": 0.43, "ms_ssim_real": 0.41, "memorised_fraction": 0.0}}


def test_the_best_rated_learned_generator_follows_the_phantom_and_its_row_is_shown():
    controller = PanelController()
    unrated = {"id": "mine", "kind": "gan", "capabilities": {"mask": False, "inpaint": False, "channel": None, "dims": 3}}
    controller.models = [NEW_ROWS[0], unrated, _rated("weak", 0.2, 0.4), _rated("strong", 0.85, 0.93), NEW_ROWS[3]]
    assert controller.generators() == ["phantom", "strong", "weak", "mine"]
    text = controller.validity_text("strong")
    assert text.startswith("Validity on the phantom benchmark: Dice ratio 0.93 [0.85, 1.03]")
    assert "precision 0.71, recall 0.64" in text and "MS-SSIM 0.43 (real 0.41)" in text and "memorised 0%" in text
    assert controller.validity_text("mine") == "" and controller.validity_text("unknown") == ""
