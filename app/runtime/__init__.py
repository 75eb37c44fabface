"""Configuration and the composition root that builds a run from it."""
