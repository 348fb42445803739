"""The data folders a panel-started engine may read: the home folder plus the ones set in the panel, checked first."""

from __future__ import annotations

from pathlib import Path

import pytest

from MedSynthLib.requests import InputError
from MedSynthLib.session import allow_dir_args


def test_no_folders_keep_the_engines_default():
    assert allow_dir_args([]) == []


def test_folders_are_added_to_the_home_folder_resolved(tmp_path):
    (tmp_path / "data").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "data")
    assert allow_dir_args([f" {link} "]) == ["--allow-dir", str(Path.home()), "--allow-dir", str((tmp_path / "data").resolve())]


@pytest.mark.parametrize("folder", ["relative/data", "/no/such/folder"])
def test_a_missing_or_relative_folder_is_refused_by_name(folder):
    with pytest.raises(InputError, match=f"The data folder {folder} does not exist"):
        allow_dir_args([folder])
