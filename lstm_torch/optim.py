"""Adam, global-norm clipping and ReduceLROnPlateau exactly as torch provides them."""

from __future__ import annotations

import torch

from lstm_core.config import TORCH_CLIP_EPS, ClippingConfig, OptimizerConfig, PlateauConfig


def build_optimizer(params, cfg: OptimizerConfig) -> torch.optim.Adam:
    """torch Adam; its weight_decay is coupled L2 (added to the gradient), not AdamW's decoupled decay."""
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: PlateauConfig) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=cfg.factor,
        patience=cfg.patience,
        threshold=cfg.threshold,
        threshold_mode=cfg.threshold_mode,
        cooldown=cfg.cooldown,
        min_lr=cfg.min_lr,
        eps=cfg.eps,
    )


def clip_gradients(params: list[torch.nn.Parameter], cfg: ClippingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip in place when clipping is on; return (global norm before clipping, factor applied), 0-d tensors."""
    grads = [p.grad for p in params]
    if cfg.enabled:
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_norm)
        # The factor clip_grad_norm_ multiplied by, recomputed from its returned norm for the records.
        factor = (cfg.max_norm / (norm + TORCH_CLIP_EPS)).clamp(max=1.0)
    else:
        norm = torch.nn.utils.get_total_norm(grads)
        factor = torch.ones_like(norm)
    return norm, factor
