"""DaVinci Resolve: Workspace > Scripts > ViML Music (installed by `viml integrations install resolve`).

Music for the current video clip from `viml serve`, placed at the playhead on a free audio track.
The work is in viml/viml_resolve.py beside this file (a folder Resolve does not list as a script).
"""

import os
import sys

MODULES = None  # the installer writes the folder of viml_resolve.py here


def _modules():
    if MODULES:
        return MODULES
    try:
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), "viml")
    except NameError:  # Resolve may run the script without __file__
        return None


if _modules() and _modules() not in sys.path:
    sys.path.insert(0, _modules())

import viml_resolve  # noqa: E402

viml_resolve.main(globals().get("resolve"), globals().get("fusion"))
