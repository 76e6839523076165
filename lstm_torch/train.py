"""The reference training loop's backend half: one epoch of steps, evaluation, the plateau schedule.

The epoch loop itself (batch order, records, progress) is backend-neutral: `lstm_core.loop`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lstm_core.config import Config, ConfigError
from lstm_core.data import Prepared, Split
from lstm_torch.model import LSTMModel
from lstm_torch.optim import build_optimizer, build_scheduler, clip_gradients


def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


def device(name: str) -> torch.device:
    """The torch device that `training.device` names: the CPU or the first CUDA GPU."""
    if name == "gpu" and not torch.cuda.is_available():
        raise ConfigError("device 'gpu' needs a CUDA GPU visible to torch (none is); use --device cpu")
    return torch.device("cuda:0" if name == "gpu" else "cpu")


class Trainer:
    """Holds the nn.Module, Adam and ReduceLROnPlateau; the same methods as `lstm_jax.train.Trainer`."""

    def __init__(self, config: Config, data: Prepared, weights: dict[str, np.ndarray]):
        torch.manual_seed(config.training.seed)  # dropout masks
        self.config = config
        self.device = device(config.training.device)
        threads = f" ({torch.get_num_threads()} threads)" if self.device.type == "cpu" else ""
        self.devices = [f"{self.device}{threads}"]  # what the run summary reports
        self.dtype = getattr(torch, config.training.dtype)
        self.loss_fn = F.cross_entropy if data.task == "classification" else F.mse_loss
        m = config.model
        self.model = LSTMModel(data.input_size, m.hidden_size, m.num_layers, m.dropout, data.num_outputs)
        self.model.to(self.device, self.dtype)
        self.model.load_state_dict({name: torch.from_numpy(np.asarray(value)) for name, value in weights.items()})
        self.param_names = [name for name, _ in self.model.named_parameters()]
        self.params = list(self.model.parameters())
        self.optimizer = build_optimizer(self.params, config.optimizer)
        self.scheduler = build_scheduler(self.optimizer, config.plateau) if config.plateau.enabled else None
        self.x_train, self.y_train = self._tensors(data.train)
        self.compile_seconds = 0.0  # eager: nothing to compile

    def _tensors(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(split.x, dtype=self.dtype, device=self.device)
        y_dtype = None if split.y.dtype.kind == "i" else self.dtype
        return x, torch.as_tensor(split.y, dtype=y_dtype, device=self.device)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def train_epoch(self, batches: np.ndarray, first_step: int) -> dict[str, np.ndarray]:
        """Run one optimizer step per row of `batches` (num_batches, B).

        Returns per-step arrays: loss, grad_norm, clip_factor, lr (num_batches,), grad_norms (num_batches, P)
        per parameter tensor, and grad_flow (S, L, T) with grad_flow_steps (S,) for the probed steps.
        """
        self.model.train()
        every = self.config.training.grad_flow_every
        losses, norms, factors, tensor_norms, flow, flow_steps = [], [], [], [], [], []
        lr = self.lr
        for i, index in enumerate(torch.from_numpy(batches).to(self.device)):
            step = first_step + i
            x, y = self.x_train[index], self.y_train[index]  # (B, T, In), (B, 1) or (B,)
            if every and step % every == 0:
                flow.append(self.model.hidden_state_gradients(x, y, self.loss_fn).detach())
                flow_steps.append(step)
            self.optimizer.zero_grad(set_to_none=False)
            loss = self.loss_fn(self.model(x), y)
            loss.backward()
            tensor_norms.append(torch.stack([torch.linalg.vector_norm(p.grad) for p in self.params]))
            norm, factor = clip_gradients(self.params, self.config.clipping)
            losses.append(loss.detach())
            norms.append(norm)
            factors.append(factor)
            if not (torch.isfinite(loss) and torch.isfinite(norm)):
                break  # keep the last finite weights: the shared loop stops after this step
            self.optimizer.step()
        num_steps = len(losses)
        return {
            "loss": torch.stack(losses).cpu().numpy(),
            "grad_norm": torch.stack(norms).cpu().numpy(),
            "clip_factor": torch.stack(factors).cpu().numpy(),
            "lr": np.full(num_steps, lr),
            "grad_norms": torch.stack(tensor_norms).cpu().numpy(),
            "grad_flow": torch.stack(flow).cpu().numpy() if flow else np.zeros((0, 0, 0)),
            "grad_flow_steps": np.asarray(flow_steps, dtype=np.int64),
        }

    @torch.no_grad()
    def predict(self, split: Split) -> np.ndarray:
        """Outputs (N, O) in eval mode (no dropout)."""
        self.model.eval()
        return self.model(self._tensors(split)[0]).cpu().numpy()

    def evaluate(self, split: Split) -> tuple[float, np.ndarray]:
        """Mean loss over the split and the outputs (N, O)."""
        outputs = self.predict(split)
        y = torch.as_tensor(split.y) if split.y.dtype.kind == "i" else torch.as_tensor(split.y, dtype=self.dtype)
        return float(self.loss_fn(torch.from_numpy(outputs), y)), outputs

    def end_epoch(self, val_loss: float) -> None:
        """Step ReduceLROnPlateau once on the epoch's mean validation loss (it sets the next epoch's lr)."""
        if self.scheduler is not None:
            self.scheduler.step(val_loss)

    def weights(self) -> dict[str, np.ndarray]:
        return {name: value.detach().cpu().numpy().copy() for name, value in self.model.state_dict().items()}

    def step_details(self, batch: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> dict:
        """For the parity suite: outputs (B, O), loss and every gradient before clipping {name: array} on the
        samples `batch` (B,), at the current weights or at `weights`, in training mode. Nothing is updated: the
        gradients are not accumulated into `.grad`, and the random state (dropout) is restored afterwards."""
        index = torch.from_numpy(batch).to(self.device)
        x, y = self.x_train[index], self.y_train[index]  # (B, T, In), (B, 1) or (B,)
        if weights is None:
            params = dict(self.model.named_parameters())
        else:
            params = {
                name: torch.as_tensor(weights[name], dtype=self.dtype, device=self.device).requires_grad_()
                for name in self.param_names
            }
        self.model.train()
        with torch.random.fork_rng(devices=[self.device.index] if self.device.type == "cuda" else []):
            outputs = torch.func.functional_call(self.model, params, (x,))  # (B, O)
        loss = self.loss_fn(outputs, y)
        grads = torch.autograd.grad(loss, list(params.values()))
        return {
            "loss": float(loss.detach()),
            "outputs": outputs.detach().cpu().numpy(),
            "grads": {name: g.cpu().numpy() for name, g in zip(params, grads, strict=True)},
        }
