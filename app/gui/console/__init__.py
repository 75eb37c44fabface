"""The operator console: a view of the engine process, which owns the control loop."""
