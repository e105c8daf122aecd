"""obskit's load generator: OTLP logs and metrics sent open-loop on a fixed schedule,
across processes, counted exactly (target = offered + not sent, offered = accepted +
rejected + failed), latency measured from when each batch was due, with a report and plots.

- ``schedule``: when every batch is due, from a scenario's rate profile;
- ``content``: what log lines say (templated text, JSON lines, stack traces);
- ``wire``: OTLP protobuf requests encoded from precomputed pieces (no per-record objects),
  and ``partial_success`` in the answers;
- ``scenario``: the scenario files in ``load/scenarios``;
- ``worker``: one sending process (dispatcher, sender lanes, retries, counting);
- ``run``: the coordinator (workers, live progress, freshness probes, backend counts);
- ``report``: the JSON report, PNG plots and the one-screen summary;
- ``sink``: a counting OTLP/HTTP receiver, for tests and benchmarks.
"""
