"""Benchmarks: ratios measured side by side in one run, never gates (not tests).

Scripts, each run on its own: ``audit_bench.py``, ``audit_report_bench.py``,
``span_bench.py``; ``stub_upstream.py`` (a 20 ms OpenAI-shaped upstream) and
``gateway_variant.py`` (the gateway with steps switched off) are started by
the gateway benches. Run from the repository root as modules:

- ``gateway_bench`` (make bench-gateway): direct, the gateway's variants, N
  workers, a git ref and LiteLLM's proxy side by side in front of the stub;
- ``vllm_stream_bench`` (make bench-vllm): streams of the tiny model through
  the gateway against vLLM directly.

Their parts: ``netns`` (re-run in a network namespace with only loopback, or
refuse), ``proctree`` (CPU of process trees from /proc), ``stages`` (the
gateway's stage histograms and refusals diffed across a phase), ``wrkload``
(wrk runs), ``schedule`` (the order of the phases), ``components`` (the stack
each bench starts), ``litellm_peer`` (LiteLLM's proxy), ``benchreport`` (rows,
Markdown, the issue's targets). Their tests: tests/unit/bench/.
"""
