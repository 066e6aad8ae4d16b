"""Device selection shared by the env, the reward models and the agent."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into cuda when available, else cpu; pass anything else to torch.

    Raises:
        ValueError: when cuda is asked for on a machine without it.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA but torch.cuda.is_available() is False; "
            "pass device='cpu' or device='auto'."
        )
    return resolved
