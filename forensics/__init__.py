"""Measurement of the router: benchmarks over labelled queries and the preference data flywheel."""
