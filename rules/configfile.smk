# Before `configfile:` reads config.yaml: if it is malformed YAML, say where (Snakemake's own
# message names neither the file nor the line). Files given with --configfile are read by
# Snakemake before this runs; see docs/faults.md.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from speedlimit.config import ConfigError, check_yaml_file  # noqa: E402

try:
    check_yaml_file(Path(workflow.basedir) / "config.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None
