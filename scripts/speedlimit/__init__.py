"""speedlimit: which DataLoader settings make training fastest on this machine, with proof.

The package has a core and three wings; each module is importable on its own, and tests import
them directly (the rule scripts in scripts/ are thin entry points over them):

- core: the vocabulary every wing shares. ``axes`` declares the grid's axes once (and their
  roles), ``grid`` turns a config into cells and paths, ``record`` is the record a cell
  writes, ``config`` validates config.yaml, ``project`` knows the project's files and code
  digests, ``logs`` and ``atomic`` are plumbing.
- ``data``: getting the data set (download with mirrors and md5 checks, the IDX format, the
  synthetic stand-in).
- ``run``: running one cell (the job, its lock and time limit; training; the warm server;
  pre-flight checks; the machine's fingerprint; the model). Only this wing imports torch.
- ``results``: reading the records (the table and summary, findings, the published
  comparison, figures, HTML tables, the report's front page).
"""

__version__ = "0.1.0"
