"""Dev tool: a screenshot of the Blender add-on panel under Xvfb (docs/screenshots/blender-vse*.png).

    xvfb-run -a -s "-screen 0 1600x900x24" blender EMPTY.blend --python tests/blender_panel_screenshot.py -- VIDEO OUT.png

with the add-on installed and `viml serve` running. Not a test: Blender 3.4 cannot choose a sidebar tab
from Python, so the other tabs' panels are unregistered first.
"""

import contextlib
import sys

import bpy

video = sys.argv[sys.argv.index("--") + 1]
out = sys.argv[sys.argv.index("--") + 2]
scene = bpy.context.scene
scene.render.fps = 12
ed = scene.sequence_editor_create()
clip = ed.sequences.new_movie("piece-0002", video, 1, 1)
clip.frame_offset_start = 12
clip.frame_final_duration = 48
ed.active_strip = clip
scene.frame_end = 80
window = bpy.context.window_manager.windows[0]
screen = window.screen
big = max(screen.areas, key=lambda a: a.width * a.height)
for area in screen.areas:
    if area != big and area.type in ("PROPERTIES", "OUTLINER"):
        pass
big.type = "SEQUENCE_EDITOR"
space = big.spaces.active
space.show_region_ui = True
scene.viml.prompt = "warm jazz piano"
# Screenshot only: Blender 3.4 cannot pick a sidebar tab from Python, so the other tabs' panels go.
for cls in list(bpy.types.Panel.__subclasses__()):
    if (
        getattr(cls, "bl_space_type", "") == "SEQUENCE_EDITOR"
        and getattr(cls, "bl_region_type", "") == "UI"
        and cls.__name__ != "VIML_PT_panel"
    ):
        with contextlib.suppress(RuntimeError):
            bpy.utils.unregister_class(cls)


def step():
    print("step", flush=True)
    region = next(r for r in big.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=big, region=region):
        print(bpy.ops.viml.suggest(), scene.viml.message, flush=True)
        bpy.ops.sequencer.view_all()
    for region in big.regions:
        region.tag_redraw()
    print("viewed", flush=True)
    for region in big.regions:
        if region.type == "UI":
            try:
                region.active_panel_category = "ViML"
            except Exception as e:
                print("category", e)
    bpy.app.timers.register(shoot, first_interval=1.5)


def shoot():
    print("shoot", flush=True)
    region = next(r for r in big.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=big, region=region):
        bpy.ops.screen.screenshot(filepath=out)
    print("shot", flush=True)
    bpy.ops.wm.quit_blender()


bpy.app.timers.register(step, first_interval=2.0)
