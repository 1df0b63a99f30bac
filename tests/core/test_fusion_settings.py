"""FusionSettings: a model folder's fitted hybrid weight (``ragcun_fusion.json``)."""

from __future__ import annotations

import pytest

from ragcun.scoring.fusion_settings import FILE, FusionSettings


def test_round_trip(tmp_path) -> None:
    settings = FusionSettings(0.65, "minmax", {"held_out_queries": 81, "source": "scifact"})
    assert settings.save(tmp_path) == tmp_path / FILE
    assert FusionSettings.load(tmp_path) == settings


def test_a_folder_without_settings_has_none(tmp_path) -> None:
    assert FusionSettings.load(tmp_path) is None


@pytest.mark.parametrize("content", ["{not json", '{"alpha": 0.5}', '{"alpha": 2, "normalization": "minmax", "fitted_on": {}}',
                                     '{"alpha": "x", "normalization": "minmax", "fitted_on": {}}', "[1, 2]",
                                     '{"alpha": 0.5, "normalization": "", "fitted_on": {}}'])
def test_a_corrupt_file_is_a_value_error_naming_the_path(tmp_path, content) -> None:
    (tmp_path / FILE).write_text(content)
    with pytest.raises(ValueError, match=f"{tmp_path / FILE}: corrupt fusion settings"):
        FusionSettings.load(tmp_path)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_alpha_out_of_range(alpha) -> None:
    with pytest.raises(ValueError, match=r"alpha \(the dense weight\) must be a number in \[0, 1\]"):
        FusionSettings(alpha, "minmax", {})


def test_bad_normalization_and_fitted_on() -> None:
    with pytest.raises(ValueError, match="normalization must be a non-empty string"):
        FusionSettings(0.5, "", {})
    with pytest.raises(ValueError, match="fitted_on must be a dict"):
        FusionSettings(0.5, "minmax", "scifact")  # type: ignore[arg-type]
