"""The one error type the CLI turns into a single ``ERROR: ...`` line and exit code 1."""
from nniray.errors import NniRayError


class CliError(NniRayError):
    """A user-facing failure (unknown id, bad file, experiment not running...); the message says
    what is wrong and what to do."""


def read_json_file(filename: str) -> object:
    """The JSON in ``--filename``, or a CliError that says whether it is missing or malformed."""
    import json
    from pathlib import Path
    path = Path(filename)
    if not path.exists():
        raise CliError(f"--filename: {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CliError(f"{path} is not valid JSON ({e})") from None
