"""Models the tests, benchmarks and a first try of the real-model path build locally, without a hub."""
