"""The DaVinci Resolve script (`ViML Music.py`, the menu entry) and its module, copied by the installer."""
