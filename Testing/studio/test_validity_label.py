"""The Generate section shows the chosen model's validity row (from GET /models' card metrics) under the model list."""

from __future__ import annotations

ROW = {"kind": "translation", "capabilities": {"mask": True, "inpaint": False, "channel": None, "dims": 3}}


def test_the_validity_row_follows_the_chosen_model(panel):
    rated = {**ROW, "id": "l2i3d-phantom", "validity": {"dice_ratio": 0.91, "dice_ratio_ci": [0.8, 1.02], "precision": 0.92,
                                                        "recall": 0.97, "ms_ssim_synthetic": 0.55, "ms_ssim_real": 0.39,
                                                        "memorised_fraction": 0.0}}
    panel.controller.models = [{"id": "phantom", "kind": "procedural"}, {**ROW, "id": "unrated"}, rated]
    panel._fill_models()
    assert [panel.modelComboBox.itemText(i) for i in range(panel.modelComboBox.count())] == ["phantom", "l2i3d-phantom", "unrated"]
    assert panel.modelValidityLabel.text() == ""  # the phantom is the reference, not rated against itself
    panel.modelComboBox.setCurrentText("l2i3d-phantom")
    assert panel.modelValidityLabel.text().startswith("Validity on the phantom benchmark: Dice ratio 0.91 [0.80, 1.02]")
    panel.modelComboBox.setCurrentText("unrated")
    assert panel.modelValidityLabel.text() == ""
