"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class ForecastError(Exception):
    """Bad input or an unrecoverable condition the user can act on.

    The message must be one line that names the problem (the file, the run, the variable) and, where there is
    one, the remedy. The CLI prints it without a traceback.
    """
