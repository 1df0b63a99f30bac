"""ragcun-train under `torchrun --nproc_per_node=2` on CPU (gloo), frozen and full fine-tuning."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from test_train_run import beir_dir  # noqa: F401  (the fixture)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--freeze-base", "--no-freeze-base"])
def test_two_process_torchrun(tiny_model_dir, beir_dir, tmp_path, mode):  # noqa: F811
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    out = tmp_path / "out"
    cmd = [torchrun, "--nproc_per_node=2", f"--master_port={_free_port()}", "-m", "ragcun_train.cli", str(beir_dir),
           "--model", tiny_model_dir, "--output", str(out), "--cache-dir", str(tmp_path / "cache"), "--max-steps", "3",
           "--batch-size", "8", "--num-slices", "32", "--isotropy-sample", "64", "--device", "cpu", "--no-progress", mode]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        proc.communicate()
        pytest.fail("torchrun did not finish in 300 s")
    assert proc.returncode == 0, stderr[-4000:]
    report = json.loads((out / "training_report.json").read_text())
    assert [s["step"] for s in report["steps"]] == [1, 2, 3]
    assert report["after"]["ndcg@10"] is not None and (out / "modules.json").is_file()
