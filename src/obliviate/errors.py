"""One exception type for every mistake a user can make in a config or on the command line.

Entry points catch it and print its message as a single line (no traceback), so the message
itself must name the bad value and say how to fix it.
"""


class ConfigError(ValueError):
    """A user-facing configuration or input error, raised before any expensive work."""
