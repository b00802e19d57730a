"""Evaluation and tooling on top of the router: data sets, log replay, fixed-model baselines,
off-policy evaluation, A/B experiments, the quality protocol, synthetic workloads, cost reports
and plots.
"""
