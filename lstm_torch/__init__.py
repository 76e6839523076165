"""The PyTorch reference trainer: nn.LSTM, Adam, clip_grad_norm_, ReduceLROnPlateau. Never imports jax."""
