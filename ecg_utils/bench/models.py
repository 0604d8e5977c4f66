"""Training and inference throughput of each registered model, in beats per second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecg_utils.bench.timing import best_of
from ecg_utils.paths import PROJ_ROOT
from ecg_utils.signal.preprocess import PreprocessConfig

TRAIN_PARAMS = PROJ_ROOT / "params" / "02-train.yaml"


def published_params(path: Path = TRAIN_PARAMS) -> dict[str, dict[str, Any]]:
    """Each published model's parameters as notebook 02 trains it (its `PUBLISHED` configurations), so that the
    bench times the models users get, not the architecture's defaults."""
    import yaml

    params = yaml.safe_load(Path(path).read_text())
    return {c["model"]: c.get("model_params", {}) for name, c in params["CONFIGS"].items()
            if name in params["PUBLISHED"]}


def _model_throughput(name: str, model_params: dict[str, Any], window: int, train_batch: int, infer_batch: int,
                      steps: int) -> dict:
    """Beats per second of one model: training steps and inference, each beat with its sequence context."""
    import torch

    from ecg_utils.model.architectures import build_model

    model = build_model(name, **model_params)
    opt = torch.optim.AdamW(model.parameters())
    k = model.context

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # n beats in runs of 32 consecutive ones (as training draws them), with their k - 1 predecessors
        rows = n + (n // 32) * (k - 1)
        x, rr = torch.randn(rows, 2, window), torch.rand(rows, 4) + 0.5
        idx = torch.stack([torch.arange(c * (32 + k - 1) + i, c * (32 + k - 1) + i + k)
                           for c in range(n // 32) for i in range(32)])
        return x, rr, idx

    x, rr, idx = batch(train_batch)
    y = torch.randint(0, 5, (len(idx),))

    def train_steps() -> None:
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model.classify(model.encode(x, rr)[idx]), y).backward()
            opt.step()

    xi, rri, idxi = batch(infer_batch)

    def infer_steps() -> None:
        with torch.inference_mode():
            for _ in range(steps):
                model.classify(model.encode(xi, rri)[idxi])

    train_s = best_of(train_steps, 3) / steps  # the first of the 3 runs doubles as warm-up
    model.eval()
    infer_s = best_of(infer_steps, 3) / steps
    return {"params": model.n_params, "train_beats_per_s": len(idx) / train_s,
            "infer_beats_per_s": len(idxi) / infer_s}


def bench_models(threads: int = 2, train_batch: int = 256, infer_batch: int = 1024, steps: int = 10) -> dict:
    """Beats per second for one optimiser step (forward, backward, AdamW) and for inference."""
    import torch

    from ecg_utils.model.architectures import MODELS

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    window, published = PreprocessConfig().window, published_params()
    return {name: _model_throughput(name, published.get(name, {}), window, train_batch, infer_batch, steps)
            for name in MODELS}


def print_models(threads: int = 2) -> dict:
    m = bench_models(threads)
    print(f"models as notebook 02 trains them, {threads} CPU threads (train: batch 256, AdamW step; inference: "
          "batch 1024):")
    for name, r in m.items():
        print(f"  {name:9s} {r['params']:8,d} params   train {r['train_beats_per_s']:7,.0f} beats/s"
              f"   inference {r['infer_beats_per_s']:8,.0f} beats/s")
    return {"threads": threads, "models": m}
