"""One exception family: every user-facing error is one sentence naming what to fix."""


class AelabError(Exception):
    """Bad input the user can fix; the CLI prints str(err) on stderr and exits with 2."""


class ConfigError(AelabError):
    """A study file or override with an unknown key or a bad value."""


class DataError(AelabError):
    """Missing, corrupt or unusable data."""


class FolderError(AelabError):
    """A run folder cannot be created, written or trusted."""
