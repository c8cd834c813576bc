#!/usr/bin/env bash
# System libraries the product and its tests need that pip cannot install:
#   libportaudio2  - sounddevice's audio output
#   pulseaudio     - a real-time-paced null sink for audio/video sync tests
#   libegl1 etc.   - Qt's offscreen platform plugin
#   libxcb-cursor0 and friends - Qt's xcb platform plugin (the desktop app on X11); without one of them
#                    `viml app` stops and names the missing packages (desktop/app.py XCB_LIBRARIES)
#   melt, ges1.0-tools, gstreamer1.0-*, blender - real editors' engines the timeline tests render with
#   xvfb           - a virtual X display: the desktop tests in a real X server (tests/test_desktop_x11.py)
#                    and screenshots of the Blender add-on (tests/blender_panel_screenshot.py)
#   fretsonfire-songs-* - real songs with MIDI charts: the beat tracker's ground truth (bench/beats.py)
# Installs only what is missing, and only when it can (root with apt-get); otherwise it says what to install.
set -euo pipefail
packages=(libportaudio2 pulseaudio libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3
    libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
    libxcb-render-util0 libxcb-shape0 libxcb-util1 libx11-xcb1 libxcb1 libx11-6 libxcb-render0 libxcb-shm0
    libxcb-sync1 libxcb-xfixes0 libxcb-xkb1 libglib2.0-0
    melt ges1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav blender xvfb
    fretsonfire-songs-muldjord fretsonfire-songs-sectoid)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "Please install these system packages: ${missing[*]}" >&2
fi
