"""Collected only when named: test_desktop_x11 runs it with the editor tests in a real X server, and it
fails unless they really ran on Qt's xcb platform (not offscreen)."""

from __future__ import annotations


def test_these_tests_ran_on_xcb(qapp):
    assert qapp.platformName() == "xcb"
