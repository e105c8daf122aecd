"""obskit's load generator: OTLP logs and metrics at a target rate, across processes,
counted exactly (offered = accepted + rejected + failed), with a report and plots.

- ``wire``: OTLP protobuf requests encoded from precomputed pieces (no per-record objects);
- ``scenario``: the scenario files in ``load/scenarios``;
- ``worker``: one sending process (rate control, keep-alive HTTP, retries, counting);
- ``run``: the coordinator (workers, live progress, freshness probes, backend counts);
- ``report``: the JSON report, PNG plots and the one-screen summary;
- ``sink``: a counting OTLP/HTTP receiver, for tests and benchmarks.
"""
