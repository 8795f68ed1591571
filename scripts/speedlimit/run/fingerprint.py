"""What machine and settings a cell ran on: the ``environment`` block of its metrics."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import socket
import sys
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _cpuinfo() -> tuple[str | None, int | None]:
    """CPU model name and physical core count from /proc/cpuinfo (Linux), else (None, None)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or None, None
    model, cores, phys, core = None, set(), None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and model is None:
            model = value
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif not line.strip():
            if core is not None:
                cores.add((phys, core))
            phys = core = None
    if core is not None:
        cores.add((phys, core))
    return model, (len(cores) or None)


# Resource limits a cell's process carries (``resource.RLIMIT_<NAME>``), where this Python has them.
RLIMITS = tuple(name for name in ("as", "core", "cpu", "data", "fsize", "memlock", "msgqueue",
                                  "nice", "nofile", "nproc", "rss", "rtprio", "rttime",
                                  "sigpending", "stack")
                if hasattr(resource, f"RLIMIT_{name.upper()}"))


def _umask() -> int:
    """The process's file mode creation mask."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # (no /proc: read it by setting it, and put it back)
    os.umask(mask)
    return mask


def cgroup() -> str | None:
    """The control groups of this process (Linux), one ``hierarchy:controllers:path`` a line."""
    try:
        return Path("/proc/self/cgroup").read_text().strip()
    except OSError:
        return None


def process() -> dict:
    """What this process runs with, beyond threads: the CPUs it may use, its niceness, its
    resource limits ([soft, hard], -1 for none), umask and control groups. A job sends its
    own to a warm server, whose forked child takes them on; every record carries the ones
    its cell actually ran with."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = None
    return {
        "affinity": affinity,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "rlimits": {name: list(resource.getrlimit(getattr(resource, f"RLIMIT_{name.upper()}")))
                    for name in RLIMITS},
        "umask": f"{_umask():04o}",
        "cgroup": cgroup(),
    }


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine() -> dict:
    """Facts about the machine that need no torch."""
    model, physical = _cpuinfo()
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:
        allowed = os.cpu_count()
    shm = shutil.disk_usage("/dev/shm").total if os.path.isdir("/dev/shm") else None
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "os": platform.platform(),
        "node": socket.gethostname(),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "physical_cores": physical,
        "cpus_allowed": allowed,
        "memory_bytes": _memory_bytes(),
        "shm_bytes": shm,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_cpus_per_task": os.environ.get("SLURM_CPUS_PER_TASK"),
        "thread_env": {k: os.environ[k] for k in THREAD_VARS if k in os.environ},
        "process": process(),
    }


def torch_facts(device) -> dict:
    """Versions and the thread settings actually in force (call after setting threads)."""
    import torch
    import torchvision

    facts = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": str(device),
        "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
    return facts
