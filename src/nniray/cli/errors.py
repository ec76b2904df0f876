"""The one error type the CLI turns into a single ``ERROR: ...`` line and exit code 1."""


class CliError(Exception):
    """A user-facing failure (unknown id, bad file, experiment not running...); the message says
    what is wrong and what to do."""
