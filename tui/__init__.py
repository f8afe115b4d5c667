"""spezichat's terminal user interface and command line.

Importing this package is cheap: the Textual app, the backends and every network or
inference library load only when a command needs them.
"""

from backends import __version__

__all__ = ["__version__"]
