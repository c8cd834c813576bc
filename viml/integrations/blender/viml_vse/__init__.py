"""ViML music: a Sequencer sidebar panel that asks `viml serve` for music for the active movie strip.

Installed by `viml integrations install blender` (which puts viml_client.py beside this file). The
panel reads the active movie strip's file and its in/out in the source (from the strip's offsets and
the scene's frame rate), sends them with a prompt and filters to the local service, lists the
suggestions with their best part and why they matched, and "Place" renders the excerpt (fitted to the
clip when the track's beats are known) into a `viml_music` folder beside the .blend and adds it as a
sound strip at the clip's start, on the first channel above it that is free over the clip's frames, and
records the placement in the catalog as a used mark (the clip, the part of the track, the .blend as the
project): "Leave out used tracks" then skips it, and `viml learn --from-marks` learns from it.

The requests block Blender's UI while they run (a suggestion takes well under a second on a warm
service; a fitted excerpt a second or two).
"""

from __future__ import annotations

import os
import re
import tempfile

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from .viml_client import Service, ServiceError

bl_info = {
    "name": "ViML music",
    "author": "ViML",
    "version": (0, 1, 0),
    "blender": (3, 0, 0),
    "location": "Sequencer > Sidebar > ViML",
    "description": "Music from your own library for the active clip, from a running `viml serve`",
    "category": "Sequencer",
}

MUSIC_FOLDER = "viml_music"


# -- what the panel reads and writes (no UI) -------------------------------------------------------------


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def clip_range(scene, strip) -> tuple[str, float, float]:
    """(video file, in, out) in the source's seconds for a movie strip.

    frame_start is where the source's first frame sits on the timeline; the soft trim
    (frame_offset_start) and the hard trim (animation_offset_start) are frames of the source cut off
    before the visible part, which is frame_final_duration frames long."""
    fps = scene_fps(scene)
    skipped = strip.frame_offset_start + getattr(strip, "animation_offset_start", 0)
    start = skipped / fps
    return os.path.normpath(bpy.path.abspath(strip.filepath)), start, start + strip.frame_final_duration / fps


def free_channel(scene, first: int, last: int, above: int) -> int:
    """The lowest channel above `above` with no strip over frames [first, last)."""
    taken = {
        s.channel for s in scene.sequence_editor.sequences_all
        if s.frame_final_start < last and s.frame_final_end > first
    }  # fmt: skip
    channel = above + 1
    while channel in taken:
        channel += 1
    return channel


def music_folder() -> str:
    if bpy.data.filepath:
        return os.path.join(os.path.dirname(bpy.data.filepath), MUSIC_FOLDER)
    return os.path.join(tempfile.gettempdir(), MUSIC_FOLDER)


def file_name(title: str, start: float, duration: float, kind: str) -> str:
    safe = re.sub(r"[^\w .+-]", "_", title).strip()[:60] or "music"
    return f"{safe} {start:.2f}+{duration:.2f} {kind}.wav"


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def service(context) -> Service:
    prefs = (
        context.preferences.addons[__name__].preferences if __name__ in context.preferences.addons else None
    )
    url = prefs.url if prefs is not None and prefs.url else None
    return Service(url=url)


# -- properties ------------------------------------------------------------------------------------------


class VIML_Result(bpy.types.PropertyGroup):
    path: StringProperty()
    title: StringProperty()
    start: FloatProperty()
    end: FloatProperty()
    score: FloatProperty()
    why: StringProperty()
    rhythm: StringProperty()


class VIML_Settings(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", description="What the music should be like")
    influence: FloatProperty(name="Influence", default=0.5, min=0.0, max=1.0,
                             description="0: the picture alone, 1: the prompt alone")  # fmt: skip
    use_picture: BoolProperty(name="Use the picture", default=True,
                              description="Send the clip (when the bundle reads pictures)")  # fmt: skip
    top: IntProperty(name="Results", default=10, min=1, max=50)
    genre: StringProperty(name="Genre", description="The file's genre tag contains this")
    min_bpm: FloatProperty(name="BPM from", default=0.0, min=0.0)
    max_bpm: FloatProperty(name="to", default=0.0, min=0.0, description="0: no upper limit")
    exclude_used: BoolProperty(name="Leave out used tracks")
    mode: EnumProperty(
        name="Excerpt",
        items=[("auto", "Fitted", "Fitted to the clip on the beats when they are known, else cut with fades"),
               ("plain", "Cut", "The best part cut to the clip's length, with fades")],
    )  # fmt: skip
    results: CollectionProperty(type=VIML_Result)
    index: IntProperty(name="Suggestion")
    message: StringProperty()
    clip: StringProperty()


class VIML_Preferences(bpy.types.AddonPreferences):
    bl_idname = __name__
    url: StringProperty(name="Service URL", description="Empty: the one `viml serve` announced")

    def draw(self, context):
        self.layout.prop(self, "url")


# -- operators -------------------------------------------------------------------------------------------


def active_movie(context):
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor else None
    return strip if strip is not None and strip.type == "MOVIE" else None


class VIML_OT_suggest(bpy.types.Operator):
    bl_idname = "viml.suggest"
    bl_label = "Suggest music"
    bl_description = "Ask the ViML service for music for the active movie strip and the prompt"

    def execute(self, context):
        settings = context.scene.viml
        strip = active_movie(context)
        if strip is None and not settings.prompt.strip():
            self.report({"ERROR"}, "Select a movie strip or type a prompt")
            return {"CANCELLED"}
        client = service(context)
        body = {"prompt": settings.prompt or None, "influence": settings.influence, "top": settings.top}
        filters = {"genre": settings.genre or None, "exclude_used": settings.exclude_used}
        if settings.min_bpm:
            filters["min_bpm"] = settings.min_bpm
        if settings.max_bpm:
            filters["max_bpm"] = settings.max_bpm
        body["filters"] = {k: v for k, v in filters.items() if v is not None}
        try:
            reads_pictures = client.status()["bundle"]["reads_pictures"]
            if strip is not None:
                video, start, end = clip_range(context.scene, strip)
                settings.clip = f"{strip.name}: {clock(start)}-{clock(end)}"
                if settings.use_picture and reads_pictures:
                    body.update(video=video, start=start, end=end)
                elif not settings.prompt.strip():
                    raise ServiceError(0, "This bundle reads no pictures: type a prompt")
            found = client.suggest(**body)
        except ServiceError as error:
            settings.message = error.message
            self.report({"ERROR"}, error.message)
            return {"CANCELLED"}
        settings.results.clear()
        for item in found["suggestions"]:
            result = settings.results.add()
            result.path, result.score = item["path"], item["score"]
            result.title = " – ".join(
                p for p in (item.get("artist"), item.get("title")) if p
            ) or os.path.basename(item["path"])
            result.start, result.end = item["start"], item["end"]
            tags = ", ".join(t["tag"] for t in item["matched_tags"])
            words = ", ".join(f"{w['word']} ({w['field']})" for w in item.get("matched_words", [])[:3])
            result.why = "; ".join(p for p in (tags, words) if p) or "the sound"
            rhythm = []
            if item.get("start_bar") is not None:
                rhythm.append(f"bar {item['start_bar']}")
            if item.get("measured_tempo"):
                rhythm.append(f"{item['measured_tempo']:.0f} BPM")
            result.rhythm = ", ".join(rhythm)
        settings.index = 0
        picture = "clip + prompt" if "video" in body else "prompt only"
        settings.message = f"{len(settings.results)} suggestions ({found['bundle']}, {picture})"
        return {"FINISHED"}


class VIML_OT_place(bpy.types.Operator):
    bl_idname = "viml.place"
    bl_label = "Place"
    bl_description = "Render the suggestion's excerpt for the clip's length and add it as a sound strip"

    def execute(self, context):
        scene, settings = context.scene, context.scene.viml
        strip = active_movie(context)
        if not settings.results or not 0 <= settings.index < len(settings.results):
            self.report({"ERROR"}, "Suggest music first")
            return {"CANCELLED"}
        result = settings.results[settings.index]
        fps = scene_fps(scene)
        if strip is not None:
            frame, frames, above = strip.frame_final_start, strip.frame_final_duration, strip.channel
        else:  # no clip: at the playhead, as long as the suggested part
            frame, frames, above = scene.frame_current, max(1, round((result.end - result.start) * fps)), 0
        duration = frames / fps
        output = os.path.join(music_folder(), file_name(result.title, result.start, duration, settings.mode))
        try:
            _, kind, note = service(context).excerpt(
                result.path, result.start, duration, output, settings.mode
            )
        except ServiceError as error:
            self.report({"ERROR"}, error.message)
            return {"CANCELLED"}
        editor = scene.sequence_editor_create()
        channel = free_channel(scene, frame, frame + frames, above)
        path = bpy.path.relpath(output) if bpy.data.filepath else output
        sound = editor.sequences.new_sound(result.title[:60] or "music", path, channel, frame)
        sound.frame_final_duration = frames  # the excerpt is exactly the clip's length; no rounding tail
        settings.message = f"placed on channel {channel}: {kind} ({note})"
        marked = record_mark(context, result, strip)
        if marked:
            settings.message += f"; {marked}"
            self.report({"WARNING"}, settings.message)
        else:
            self.report({"INFO"}, settings.message)
        return {"FINISHED"}


def record_mark(context, result, strip) -> str:
    """Tell the service the suggestion was used in this edit: with the movie strip's clip (in/out in the
    source) a training pair for `viml learn --from-marks`, else the track only; the .blend is the project.
    Returns why it was not recorded ("" when it was): the strip is placed either way."""
    body = {"offset": result.start if strip is not None else None, "origin": "blender",
            "project": bpy.path.abspath(bpy.data.filepath) if bpy.data.filepath else None}  # fmt: skip
    if strip is not None:
        video, start, end = clip_range(context.scene, strip)
        body.update(video=video, start=start, end=end)
    try:
        service(context).mark(result.path, **body)
    except ServiceError as error:
        return f"not marked used: {error.message}"
    return ""


# -- the panel -------------------------------------------------------------------------------------------


class VIML_UL_results(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.label(text=item.title, icon="SOUND")
        row.label(text=f"{clock(item.start)}-{clock(item.end)}")
        row.label(text=f"{item.score:.2f}")


class VIML_PT_panel(bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "ViML"
    bl_label = "ViML music"

    def draw(self, context):
        layout, settings = self.layout, context.scene.viml
        strip = active_movie(context)
        box = layout.box()
        if strip is not None:
            _, start, end = clip_range(context.scene, strip)
            box.label(text=f"{strip.name}", icon="FILE_MOVIE")
            box.label(text=f"in {clock(start)}  out {clock(end)}  ({end - start:.2f} s)")
        else:
            box.label(text="No movie strip selected: prompt only", icon="INFO")
        layout.prop(settings, "prompt")
        row = layout.row()
        row.prop(settings, "influence", slider=True)
        row.prop(settings, "use_picture", text="", icon="IMAGE_DATA")
        filters = layout.column(heading="Filters")
        filters.prop(settings, "genre")
        row = filters.row(align=True)
        row.prop(settings, "min_bpm")
        row.prop(settings, "max_bpm")
        filters.prop(settings, "exclude_used")
        row = layout.row()
        row.prop(settings, "top")
        row.operator(VIML_OT_suggest.bl_idname, icon="VIEWZOOM")
        layout.template_list("VIML_UL_results", "", settings, "results", settings, "index", rows=5)
        if settings.results and 0 <= settings.index < len(settings.results):
            chosen = settings.results[settings.index]
            detail = layout.box().column(align=True)
            detail.label(text=f"Best part {clock(chosen.start)}-{clock(chosen.end)}" +
                         (f"  ({chosen.rhythm})" if chosen.rhythm else ""))  # fmt: skip
            detail.label(text=f"Why: {chosen.why}")
            row = layout.row()
            row.prop(settings, "mode", expand=True)
            row.operator(VIML_OT_place.bl_idname, icon="NLA_PUSHDOWN")
        if settings.message:
            layout.label(text=settings.message)


CLASSES = (VIML_Result, VIML_Settings, VIML_Preferences, VIML_OT_suggest, VIML_OT_place, VIML_UL_results,
           VIML_PT_panel)  # fmt: skip


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.viml = PointerProperty(type=VIML_Settings)


def unregister():
    del bpy.types.Scene.viml
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
