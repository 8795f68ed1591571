"""speedlimit: which DataLoader settings make training fastest on this machine, with proof.

Small modules, each importable on its own; only ``train``, ``data``, ``model`` and ``warm``'s
server side import torch.
"""

__version__ = "0.1.0"
