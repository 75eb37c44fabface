"""The control loop's process: the engine behind the console, its status and commands, headless runs."""
