"""Read back what the trackers wrote (shared by the script tests)."""

from __future__ import annotations

from pathlib import Path


def tensorboard_scalars(folder: Path) -> dict[str, list[float]]:
    """Every scalar tag under ``folder``'s event files, values in write order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted({p.parent for p in folder.rglob("events.out.tfevents.*")})
    assert events, f"no TensorBoard event file under {folder}"
    scalars: dict[str, list[float]] = {}
    for run in events:
        accumulator = EventAccumulator(str(run))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.value for e in accumulator.Scalars(tag))
    return scalars
