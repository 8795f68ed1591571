"""Warm start: pay ``import torch, torchvision`` once per machine, not once per cell.

A cell job (the *client*) connects to a Unix socket. Behind it a *server* process has
imported torch, torchvision and the training code, but has run no torch operation (so no
thread pool and no CUDA context exist yet). For each request it forks a *handler*, and the
handler forks the *child* that becomes the cell's process: a fresh session, the job's working
directory, environment, log, CPU affinity, niceness, resource limits, umask and control
groups. Only then does the handler tell the client that the cell started; from there the
handler watches the client's connection: if the client dies (Snakemake killed, job
cancelled, the job's time limit), the child and its DataLoader workers are killed with it;
when the child exits, its exit code goes back to the client, which exits with it.

Safe on a shared machine, and never the cause of a failed cell:

* The socket and the server's files live in a folder only this user can enter
  (``$SPEEDLIMIT_WARM_DIR``, else ``$XDG_RUNTIME_DIR/speedlimit``, else
  ``<temp>/speedlimit-warm-<uid>``), whose owner and mode are checked before each use.
* Both ends check the peer's user id (``SO_PEERCRED``): the client sends nothing (no
  environment) to another user's process, and the server runs nothing for one.
* The socket is named by the server's *identity*: the interpreter, where the code was loaded
  from (the project folder and its package folder's inode), a digest of the training code and
  the torch and torchvision versions. The client sends its identity, the server compares it
  with its own and refuses on any difference, and a server whose code folder is gone or was
  replaced refuses every cell and exits.
* Whatever fails before the cell's clock could start (an unsafe folder, another user, no
  server, a refusing server, a child that cannot become the cell's process) raises
  :class:`WarmUnavailable`; the job then runs the cell cold, with one warning in its log.

A server exits after ``idle`` seconds with nothing to do, and takes its socket, pid and log
files with it; files of a server killed outright are swept by the next server's start.
"""

from speedlimit.run.warm.client import connect, run  # noqa: F401 - the job's side
from speedlimit.run.warm.shared import (  # noqa: F401 - what the job and the tests use
    IDLE_SECONDS, WarmUnavailable, digest, folder, identity, is_warm_server, socket_path)
