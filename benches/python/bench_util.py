"""Helpers shared by the side-by-side bench scripts: peak memory of the process and of live DataLoader workers,
and the per-epoch checkpoint a PyTorch user writes (so both sides time the same span).
"""

import os
import resource

import torch


def peak_rss_mib():
    """The process's peak resident memory in MiB (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def worker_peak_rss_mib(loader):
    """Peak resident memory (MiB) of each live worker of a DataLoader with persistent workers, read from
    /proc/PID/status while the workers run (RUSAGE_CHILDREN counts only exited, reaped children, so it reads 0 for
    persistent workers). Raises when a worker cannot be read: a bench must not print a made-up 0."""
    it = getattr(loader, "_iterator", None)
    workers = getattr(it, "_workers", None) if it is not None else None
    if not workers:
        raise RuntimeError("the DataLoader has no live workers (persistent_workers=True and iterated at least once?)")
    peaks = [_vm_hwm_mib(w.pid) for w in workers]
    if any(p is None for p in peaks):
        raise RuntimeError(f"cannot read the workers' memory: {peaks}")
    return peaks


def save_checkpoint(path, model, optimizer, epoch):
    """torch.save of model and optimizer state, written to a temporary file and renamed (as dlkit does)."""
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, tmp)
    os.replace(tmp, path)
