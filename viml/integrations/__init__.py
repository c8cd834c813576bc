"""Files for other programs, not imported by ViML: the editor add-ons `viml integrations install` copies.

    viml_client.py      the standard-library client of `viml serve` that every add-on ships
    blender/viml_vse/   the Blender Video Sequence Editor add-on (a sidebar panel)
    resolve/            the DaVinci Resolve Workspace -> Scripts script

They run in the editor's own Python (they import bpy or Resolve's API), so nothing else in ViML may
import them; they are a package only so that the wheel carries them.
"""
