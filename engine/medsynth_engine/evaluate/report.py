"""``report.html``: one self-contained page (figures embedded as PNG data) that explains every number."""

from __future__ import annotations

import base64
import html
from typing import Any

from .report_validity import prdc_section, tstr_section, tumour_section

__all__ = ["render_report"]

_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}img{max-width:100%}
.note{color:#555;font-size:.92em}.flag{color:#b00;font-weight:bold}"""

FEATURE_EXPLANATION = (
    "No pretrained network can be downloaded inside a hospital, so MMD and the Fréchet distance are computed on "
    "radiomics-style features, in the spirit of the Fréchet Radiomics Distance used in recent medical image synthesis "
    "work: per image channel inside the head, first-order intensity statistics (mean, spread, skewness, kurtosis, "
    "10/50/90th percentiles, histogram entropy) and texture (gradient magnitude mean and spread, local contrast, "
    "Laplacian energy); the head's size and elongation; and, where labels exist, the tumour's size relative to the head, "
    "the share of each label, its distance from the head's centre and its surface-to-volume ratio. Every case is first "
    "brought onto one grid and intensity scale ([-1, 1] per case and channel, as a model sees it), and each feature is "
    "measured in units of its spread across the real set. These features are interpretable (a large distance can be "
    "traced to a feature) and need no training; they do not see everything a deep encoder would."
)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: list[tuple[str, Any, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td><td class=note>{html.escape(n)}</td></tr>" for k, v, n in rows)
    return f"<table>{body}</table>"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _slicing(slicing: dict[str, Any] | None) -> str:
    """How the real volumes became the slices a 2D set was compared with (nothing when no slicing happened)."""
    if not slicing:
        return ""
    grid = slicing["grid"]
    return (
        f"<p>The real set's {slicing['cases']} 3D case(s) were sliced into {slicing['slices']} {slicing['axis']} slices as the 2D "
        f"training slices them: {slicing['selection'].removeprefix('per case ')}, at most {slicing['slices_per_case']} per case "
        f"(--slices-per-case), from a {'x'.join(map(str, grid['shape']))} grid at {'x'.join(f'{s:.3g}' for s in grid['spacing'])} mm.</p>"
    )


def render_report(metrics: dict[str, Any], figures: dict[str, bytes]) -> str:
    """The HTML page for ``metrics`` (as written to metrics.json) and the figures (name -> PNG bytes)."""
    audit = metrics.get("audit") or {}
    parts = [
        f"<!doctype html><html><head><meta charset=utf-8><title>MedSynth evaluation</title><style>{_STYLE}</style></head><body>",
        "<h1>MedSynth evaluation: synthetic against real</h1>",
        f"<p>{metrics['n_synthetic']} synthetic and {metrics['n_real']} real case(s); channels {', '.join(metrics['channels'])}; "
        f"evaluation grid {'x'.join(map(str, metrics['grid']['shape']))} at {'x'.join(f'{s:.3g}' for s in metrics['grid']['spacing'])} mm.</p>",
        _slicing(metrics.get("real_slicing")),
        "<h2>Summary</h2>",
        _table(
            [
                ("ms_ssim_synthetic", metrics["ms_ssim_synthetic"], "mean pairwise MS-SSIM within the synthetic set (higher = less diverse)"),
                ("ms_ssim_real", metrics["ms_ssim_real"], "the same within the real set; synthetic well above real suggests mode collapse"),
                ("mmd", metrics["mmd"], "maximum mean discrepancy of the features (0 = same distribution)"),
                ("frechet_distance", metrics["frechet_distance"], "Fréchet distance of Gaussians fitted to the features (0 = same)"),
                ("memorised_fraction", metrics["memorised_fraction"], "fraction of synthetic cases flagged as probable copies of real cases"),
                ("precision / recall", f"{_fmt(metrics['precision'])} / {_fmt(metrics['recall'])}", "fidelity / diversity on learned features (section below)"),
                ("density / coverage", f"{_fmt(metrics['density'])} / {_fmt(metrics['coverage'])}", "the same, robust to outliers"),
                *(
                    [
                        ("dice_ratio", metrics["dice_ratio"], f"mean Dice trained on synthetic / trained on real, 95 % interval {metrics['dice_ratio_ci']}"),
                        ("control_ratio", metrics["control_ratio"], f"the same for an independent real set, 95 % interval {metrics['control_ratio_ci']}"),
                    ]
                    if "dice_ratio" in metrics
                    else []
                ),
            ]
        ),
        "<h2>Samples</h2><p class=note>Axial slices through the tumour (or the middle); labels: NCR green, ED yellow, ET red.</p>",
        _image(figures["mosaic"], "sample mosaics"),
        "<h2>Intensity histograms</h2><p class=note>Per channel, inside the head, on the common [-1, 1] scale.</p>",
        _image(figures["histograms"], "intensity histograms"),
    ]
    if "tumour_volumes" in figures:
        parts += ["<h2>Tumour volumes</h2>", _image(figures["tumour_volumes"], "tumour volume distributions")]
    if metrics.get("cohort"):
        from ..cohort.summary import summary_html

        parts.append(summary_html(metrics["cohort"]))
    parts += [
        "<h2>Distribution distances: which features, and why</h2>",
        f"<p>{html.escape(FEATURE_EXPLANATION)}</p>",
        f"<p class=note>{len(metrics['features']['names'])} features; MMD kernel width {_fmt(metrics['features']['mmd_kernel_width'])} "
        "(median pairwise distance). Largest standardised mean differences: "
        + ", ".join(f"{html.escape(k)} {v:+.2f}" for k, v in metrics["features"]["largest_differences"].items())
        + "</p>",
        "<h2>Diversity (MS-SSIM)</h2>",
        f"<p class=note>MONAI MultiScaleSSIMMetric, {len(metrics['ms_ssim_setting']['weights'])} scales, kernel "
        f"{metrics['ms_ssim_setting']['kernel_size']}, over all pairs of up to {metrics['diversity_cases']} cases per set, averaged over channels.</p>",
        "<h2>Memorisation audit</h2>",
    ]
    if audit:
        flagged = [c for c in audit["cases"] if c["flagged"]]
        parts.append(
            f"<p>{len(flagged)} of {audit['n_synthetic']} synthetic case(s) flagged as probable copies of real cases "
            f"(score threshold {audit['threshold']}; score = 1 - d / d_ref with d = 1 - NCC to the nearest real case over flips and small shifts, "
            f"d_ref = {audit['reference_distance']:.4g}, the typical distance between distinct real cases). Highest score: {_fmt(audit['max_score'])}.</p>"
        )
        if flagged:
            parts.append("<p class=flag>Do not share these cases: " + ", ".join(html.escape(c["case"]) for c in flagged) + "</p>")
    parts += [prdc_section(metrics), tumour_section(metrics), tstr_section(metrics)]
    parts.append("</body></html>")
    return "\n".join(parts)
