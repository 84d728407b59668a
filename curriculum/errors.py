"""The one base class for errors the user can fix (bad config, data, paths).

The CLI prints such an error as one line and exits 2; anything else is a bug and
keeps its traceback.
"""


class CurriculumError(Exception):
    """Bad input or state that the user can fix; the message is one line."""
