"""A plain ``pip install .`` ships every module and the bundled demo data (built wheel's contents)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from repo_paths import REPO_ROOT

SOURCE_ROOTS = ("src", "integrations", "training")


def test_wheel_contains_every_module(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO_ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("ragcun-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(REPO_ROOT / root)).replace("\\", "/")
        for root in SOURCE_ROOTS
        for path in (REPO_ROOT / root).rglob("*.py")
        if "__pycache__" not in path.parts and "tests" not in path.parts
    }
    assert expected, "no source modules found"
    missing = sorted(expected - shipped)
    assert not missing, f"modules missing from the wheel: {missing}"
    demo = REPO_ROOT / "training" / "ragcun_train" / "demo"
    data_files = {str(p.relative_to(REPO_ROOT / "training")) for p in demo.rglob("*") if p.suffix in {".jsonl", ".tsv", ".md"}}
    assert data_files and not data_files - shipped, f"demo data missing from the wheel: {sorted(data_files - shipped)}"
    assert "ragcun/model/calibrators/all-MiniLM-L6-v2/relevance_calibrator.json" in shipped  # GaussianEncoder()'s calibrator
    entry_points = next(name for name in shipped if name.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "ragcun-train" in scripts and "ragcun-eval" in scripts
