"""What only the benchmarks and the tests use: whole races simulated through the race's code
(:mod:`speedbench.simulation`), the noise benchmark's arithmetic (:mod:`speedbench.trace`,
:mod:`speedbench.spread`). Not part of the pipeline's package (``scripts/speedlimit``): the
pipeline never imports it, and its code is no cell's rerun trigger. The tests find it through
``pythonpath`` in pyproject.toml; a benchmark script finds it beside itself."""
