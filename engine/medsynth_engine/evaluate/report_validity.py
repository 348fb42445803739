"""The report's validity sections: what each fidelity, diversity and usefulness number means, and its gap.

Each metric gets one sentence that says how to read a gap between synthetic and real, because the same gap
means different things for different metrics (a synthetic set that varies more than the real one shows as
recall and coverage above precision and density, not as a bad distance).
"""

from __future__ import annotations

import html
from typing import Any

from .tumour_stats import SIZE_KEYS

__all__ = ["EXPLANATIONS", "prdc_section", "tumour_section", "tstr_section"]

EXPLANATIONS = {
    "precision": "Fidelity: the share of synthetic cases that fall inside the real set's feature region; below the "
    "real-vs-real control, some samples look like no real case.",
    "recall": "Diversity: the share of real cases that fall inside the synthetic set's region; below the control, "
    "the generator misses part of the real variation (mode collapse shows here first).",
    "density": "Fidelity weighted by how typical: about (k+1)/k for the same distribution; above it, samples crowd the "
    "most common real cases; below it, they sit at the edge of or outside the real region.",
    "coverage": "Diversity robust to outliers: the share of real cases with a synthetic case nearby; recall and "
    "coverage above precision and density means the synthetic set varies more than the real one.",
    "ms_ssim": "Structural similarity between pairs within a set: synthetic above real means the samples are more "
    "alike than real cases are (collapse); below real, they vary more (or are noisier).",
    "tumour": "Per tumour class: a presence rate or volume ratio far from 1 means a segmenter trained on the set sees "
    "that class too rarely or at the wrong size; a large centroid shift means tumours in the wrong places.",
    "dice_ratio": "Usefulness: how much of the real data's segmentation value the synthetic set carries; read it "
    "against the control ratio (an independent real set of the same size), whose interval should contain 1.",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return html.escape(str(value))


def prdc_section(metrics: dict[str, Any]) -> str:
    """Precision/recall/density/coverage beside the real-vs-real control, one explanation each."""
    info = metrics.get("prdc")
    if not info:
        return ""
    control = info.get("control") or {}
    rows = "".join(
        f"<tr><th>{k}</th><td>{_fmt(metrics[k])}</td><td>{_fmt(control.get(k))}</td><td class=note>{html.escape(EXPLANATIONS[k])}</td></tr>"
        for k in ("precision", "recall", "density", "coverage")
    )
    return (
        "<h2>Fidelity and diversity (precision, recall, density, coverage)</h2>"
        f"<p class=note>Kynkäänniemi et al. 2019; Naeem et al. 2020; k = {info['k']} nearest neighbours on {html.escape(info['features'])}. "
        f"Control: {html.escape(info['control_note'])}.</p>"
        f"<table><tr><th>metric</th><th>synthetic vs real</th><th>real vs real (control)</th><th>what a gap means</th></tr>{rows}</table>"
        f"<p class=note>MS-SSIM: {html.escape(EXPLANATIONS['ms_ssim'])}</p>"
    )


def tumour_section(metrics: dict[str, Any]) -> str:
    """Presence rate, median volume (area for 2D slices) and centroid per class, synthetic beside real."""
    stats = metrics.get("tumour_statistics")
    if not stats:
        return ""
    size_key = SIZE_KEYS[metrics.get("spatial_dims", 3)]
    size, unit = ("area", "mm^2") if size_key == "area_mm2" else ("volume", "ml")
    rows = ""
    for name, cmp in stats["synthetic_vs_real"].items():
        s, r = stats["synthetic"][name], stats["real"][name]
        median = [(v[size_key] or {}).get("median") for v in (s, r)]
        rows += (
            f"<tr><th>{html.escape(name)}</th><td>{_fmt(s['presence_rate'])} / {_fmt(r['presence_rate'])}</td>"
            f"<td>{_fmt(median[0])} / {_fmt(median[1])}</td><td>{_fmt(cmp[f'median_{size}_ratio'])}</td><td>{_fmt(cmp['centroid_shift_mm'])}</td></tr>"
        )
    return (
        f"<h2>Tumour classes: presence, {size}, location</h2>"
        f"<p class=note>On the fixed TSTR grid{', per slice' if size == 'area' else ''}. {html.escape(EXPLANATIONS['tumour'])}</p>"
        f"<table><tr><th>class</th><th>presence rate synthetic / real</th><th>median {size} {unit} synthetic / real</th>"
        f"<th>median {size} ratio</th><th>centroid shift mm</th></tr>{rows}</table>"
    )


def tstr_section(metrics: dict[str, Any]) -> str:
    """TSTR Dice per condition with 95 % intervals, the ratios and the control."""
    if "dice_ratio" not in metrics:
        return ""
    t = metrics["tstr"]
    keys = list(metrics["dice_real"])
    conditions = (
        ("dice_synthetic", "synthetic"),
        ("dice_real", "real"),
        ("dice_control", "control"),
        ("dice_real_plus_synthetic", "real_plus_synthetic"),
    )
    names = {"synthetic": "trained on synthetic", "real": "trained on real (A)", "control": "trained on independent real (B)",
             "real_plus_synthetic": "real (A) + synthetic"}
    rows = ""
    for key, name in conditions:
        ci = metrics["dice_ci"][name]
        rows += f"<tr><th>{names[name]}</th>" + "".join(f"<td>{_fmt(metrics[key][k])} {_fmt(ci[k])}</td>" for k in keys) + "</tr>"
    ratios = (
        f"dice_ratio (synthetic / real) {_fmt(metrics['dice_ratio'])} {_fmt(metrics['dice_ratio_ci'])}; "
        f"control ratio (independent real / real) {_fmt(metrics['control_ratio'])} {_fmt(metrics['control_ratio_ci'])}; "
        f"real + synthetic / real {_fmt(metrics['real_plus_synthetic_ratio'])} {_fmt(metrics['real_plus_synthetic_ratio_ci'])}"
    )
    return (
        "<h2>Train on synthetic, test on held-out real</h2>"
        f"<p class=note>{html.escape(t['network'])}; {t['n_train']} training case(s) per model, seeds {t['seeds']}, grid {t['grid']}^3; "
        f"tested on {t['n_test']} held-out real case(s) per seed. {html.escape(t['dice'])}. Intervals: {html.escape(t['confidence'])}.</p>"
        f"<table><tr><th>Dice [95 % interval]</th>{''.join(f'<th>{html.escape(k)}</th>' for k in keys)}</tr>{rows}</table>"
        f"<p>{ratios}.</p><p class=note>{html.escape(EXPLANATIONS['dice_ratio'])}</p>"
    )
