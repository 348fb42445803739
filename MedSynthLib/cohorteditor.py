"""The panel's cohort editor: a strata table whose rows become the cohort document a ``generate`` job takes.

One row per stratum, as text cells: name, count, volume range in ml (``5-20``, empty for any), site (``left``,
``right``, a lobe, or empty), enhancing (``yes``, ``no`` or empty), healthy (``yes`` or empty; a healthy stratum has
no tumour and takes no tumour cells). :func:`cohort_from_rows` checks the cells and says in one sentence which row
and cell is wrong; the engine checks the rest (what the phantom can draw) before it writes anything. No Qt import:
:class:`CohortEditor` drives the table through calls PythonQt (Slicer) and PyQt5 (medsynth-studio) share.
"""

from __future__ import annotations

from typing import Any

from .i18n import _
from .requests import InputError
from .sections import read_property

__all__ = ["COLUMNS", "DEFAULT_ROWS", "LOBES", "cohort_from_rows", "CohortEditor"]

COLUMNS = ("name", "count", "volume_ml", "site", "enhancing", "healthy")
LOBES = ("frontal", "parietal", "temporal", "occipital")
#: The table a new panel shows: the issue's example, small.
DEFAULT_ROWS = (
    {"name": "small-left", "count": "4", "volume_ml": "5-20", "site": "left", "enhancing": "no", "healthy": ""},
    {"name": "large-right", "count": "4", "volume_ml": "60-120", "site": "right", "enhancing": "yes", "healthy": ""},
    {"name": "healthy", "count": "2", "volume_ml": "", "site": "", "enhancing": "", "healthy": "yes"},
)
_YES, _NO = ("yes", "y", "true", "1"), ("no", "n", "false", "0")


def _flag(text: str, where: str, column: str) -> bool | None:
    value = text.strip().lower()
    if not value or value == "any":
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise InputError(f"{where}: {column} must be yes, no or empty, not '{text}'.")


def _volume(text: str, where: str) -> list[float] | None:
    value = text.strip().replace(" ", "")
    if not value:
        return None
    low, sep, high = value.partition("-")
    try:
        bounds = [float(low), float(high if sep else low)]
    except ValueError:
        raise InputError(f"{where}: volume must be a range in ml such as 5-20, not '{text}'.") from None
    if not 0 < bounds[0] <= bounds[1]:
        raise InputError(f"{where}: volume {text} must be positive, the low end first.")
    return bounds


def _stratum(row: dict[str, str], index: int) -> dict[str, Any]:
    name = row.get("name", "").strip()
    where = _("Stratum row {number}").format(number=index + 1) + (f" ({name})" if name else "")
    if not name:
        raise InputError(f"{where} has no name; give every stratum a name.")
    try:
        count = int(row.get("count", "").strip())
    except ValueError:
        count = 0
    if count < 1:
        raise InputError(f"{where}: count must be a whole number of at least 1, not '{row.get('count', '')}'.")
    tumour_cells = {k: row.get(k, "").strip() for k in ("volume_ml", "site", "enhancing")}
    if _flag(row.get("healthy", ""), where, "healthy"):
        if any(tumour_cells.values()):
            raise InputError(f"{where} is healthy but has tumour cells filled in; clear them or untick healthy.")
        return {"name": name, "count": count, "tumour": "none"}
    tumour: dict[str, Any] = {}
    volume = _volume(tumour_cells["volume_ml"], where)
    if volume is not None:
        tumour["volume_ml"] = volume
    site = tumour_cells["site"].lower()
    if site in ("left", "right"):
        tumour["hemisphere"] = site
    elif site in LOBES:
        tumour["lobe"] = site
    elif site not in ("", "any"):
        raise InputError(f"{where}: site must be left, right, one of {', '.join(LOBES)}, or empty, not '{tumour_cells['site']}'.")
    enhancing = _flag(tumour_cells["enhancing"], where, "enhancing")
    if enhancing is not None:
        tumour["enhancing"] = enhancing
    return {"name": name, "count": count, "tumour": tumour}


def cohort_from_rows(rows: list[dict[str, str]]) -> dict[str, Any]:
    """The cohort document (``{"strata": [...]}``) for the table's rows; InputError naming the row otherwise."""
    if not rows:
        raise InputError("The cohort has no strata; add a row.")
    strata = [_stratum(row, i) for i, row in enumerate(rows)]
    names = [s["name"] for s in strata]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"Two strata are named {twice[0]}; give every stratum its own name.")
    return {"strata": strata}


class CohortEditor:
    """Drives the Cohort section's table (``cohortTable``) and its Add row / Remove row buttons.

    ``item_class`` is the binding's ``QTableWidgetItem`` (``qt.QTableWidgetItem`` in Slicer)."""

    def __init__(self, ui: Any, item_class: Any) -> None:
        self.table, self.item_class = ui.cohortTable, item_class
        self.table.setColumnCount(len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        for row in DEFAULT_ROWS:
            self.add_row(row)
        ui.addStratumButton.connect("clicked()", self.add_row)
        ui.removeStratumButton.connect("clicked()", self.remove_row)

    def add_row(self, values: dict[str, str] | None = None) -> None:
        """A new stratum row at the end (``values`` by column, else a tumour stratum named for its row)."""
        row = read_property(self.table, "rowCount")
        values = values or {"name": f"stratum-{row + 1}", "count": "1"}
        self.table.setRowCount(row + 1)
        for column, key in enumerate(COLUMNS):
            self.table.setItem(row, column, self.item_class(values.get(key, "")))

    def remove_row(self) -> None:
        """Remove the selected row (the last one when none is selected)."""
        rows = read_property(self.table, "rowCount")
        if rows:
            current = read_property(self.table, "currentRow")
            self.table.removeRow(current if 0 <= current < rows else rows - 1)

    def rows(self) -> list[dict[str, str]]:
        """The table's cells as text, one dict per row."""
        out = []
        for row in range(read_property(self.table, "rowCount")):
            cells = {}
            for column, key in enumerate(COLUMNS):
                item = self.table.item(row, column)
                cells[key] = item.text() if item is not None else ""
            out.append(cells)
        return out

    def cohort(self) -> dict[str, Any]:
        return cohort_from_rows(self.rows())
