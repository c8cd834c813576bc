"""The FastAPI app of `viml serve`: routes, request and response models, errors as one-line JSON.

Every route is a plain function (FastAPI runs it in its thread pool) that turns the request into the
search's own objects (`SuggestRequest`, `Filters`: they check every value, as for the CLI) and calls
work.py. Errors come back as `{"error": "one line"}`: 400 for a request the search refuses, 401/403
from the guard (limits.py), 404 for a track not in the catalog, 413 for a body over the limit, 422 for
a malformed body or an unreadable media file, 504 when the time-out passed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from viml.core.errors import MediaError, UserFacingError
from viml.search.defaults import MEANING_WEIGHT, POOLINGS, WORDS_WEIGHT
from viml.search.filters import Filters
from viml.search.searcher import SearchResult, SegmentHit, Suggestion, SuggestRequest
from viml.search.service.limits import Guard, error_response
from viml.search.service.work import EXCERPT_MODES, FIT_LUFS, NotFoundError, TimedOutError, Work

log = logging.getLogger("viml.service")

API_VERSION = "1"
UPLOAD_PATH = "/v1/suggest/upload"
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class FiltersIn(Strict):
    min_duration: float | None = Field(None, description="track length at least this, seconds")
    max_duration: float | None = Field(None, description="track length at most this, seconds")
    genre: str | None = Field(None, max_length=200, description="file-tag genre contains this text")
    min_bpm: float | None = Field(None, description="tempo at least (file tag, else measured)")
    max_bpm: float | None = None
    folder: str | None = Field(None, max_length=4096, description="only tracks under this folder")
    exclude: list[str] = Field(default_factory=list, max_length=1000, description="tracks to leave out")
    exclude_used: bool = Field(False, description="leave out tracks marked used")
    vocals: bool | None = Field(None, description="true: tracks with vocals only; false: instrumental only")

    def filters(self) -> Filters:
        return Filters(
            min_duration=self.min_duration, max_duration=self.max_duration, genre=self.genre,
            min_bpm=self.min_bpm, max_bpm=self.max_bpm, folder=self.folder, exclude=set(self.exclude),
            exclude_used=self.exclude_used, vocals=self.vocals,
        )  # fmt: skip


class SearchIn(Strict):
    """What `viml suggest` takes, but the video (a path in /v1/suggest, a file in /v1/suggest/upload)."""

    start: float = Field(0.0, description="clip in point, seconds")
    end: float | None = Field(None, description="clip out point, seconds (default: 30 s after in)")
    prompt: str | None = Field(None, max_length=2000, description="what the music should be like")
    influence: float = Field(
        0.5,
        description="0: the picture alone (the prompt is ignored) .. 1: the prompt alone (its own ranking)",
    )
    top: int = Field(10, ge=1, le=200, description="how many tracks")
    filters: FiltersIn = Field(default_factory=FiltersIn)
    sound_weight: float = 1.0
    words_weight: float = WORDS_WEIGHT
    meaning_weight: float = MEANING_WEIGHT
    pooling: str = Field("best", description=f"one of {', '.join(POOLINGS)}")
    like: str | None = Field(
        None, max_length=4200,
        description="a catalogued track to start from, PATH[@OFFSET] (seconds or m:ss: its part from there); "
        "the prompt's words move it: calmer, slower, brighter, without drums ...",
    )  # fmt: skip

    def request(self, video: str | None) -> SuggestRequest:
        return SuggestRequest(
            video=video, start=self.start, end=self.end, prompt=self.prompt, influence=self.influence,
            filters=self.filters.filters(), top=self.top, sound_weight=self.sound_weight,
            words_weight=self.words_weight, meaning_weight=self.meaning_weight, pooling=self.pooling,
            like=self.like,
        )  # fmt: skip


class SuggestIn(SearchIn):
    video: str | None = Field(None, max_length=4096, description="video file on this machine")


class SuggestOut(BaseModel):
    bundle: str
    bundle_kind: str
    reads_pictures: bool
    header: str = Field(description="which bundle ranked and which prompt terms applied")
    suggestions: list[Suggestion]


class SimilarIn(Strict):
    track: str = Field(max_length=4096, description="a catalogued track")
    start: float | None = Field(None, description="use the reference from this time")
    end: float | None = Field(None, description="... up to this time")
    top: int = Field(10, ge=1, le=200)
    filters: FiltersIn = Field(default_factory=FiltersIn)


class SimilarOut(BaseModel):
    tracks: list[Suggestion]
    segments: list[SegmentHit]


class ExcerptIn(Strict):
    path: str = Field(max_length=4096, description="a catalogued track")
    start: float = Field(description="where the part starts in the track, seconds")
    duration: float = Field(description="how long the excerpt is, seconds")
    mode: str = Field("auto", description=f"one of {', '.join(EXCERPT_MODES)} (see the docs)")
    target_lufs: float | None = Field(FIT_LUFS, description="loudness to match, LUFS (null: as it is)")


class MarkIn(Strict):
    """A suggestion placed in an edit: a training pair for `viml learn --from-marks` with its clip (video,
    start, end, offset), else a used track only; `filters.exclude_used` leaves both out."""

    track: str = Field(max_length=4096, description="the catalogued track that was placed (a result's path)")
    offset: float | None = Field(None, description="where the placed part starts in the track, seconds")
    video: str | None = Field(
        None, max_length=4096, description="the video file on this machine it was placed against"
    )
    start: float | None = Field(None, description="the clip's in point in the video's own time, seconds")
    end: float | None = Field(None, description="the clip's out point, seconds")
    project: str | None = Field(
        None, max_length=4096, description="the edit (timeline, .blend) it belongs to; default: the video"
    )
    origin: str = Field(
        "service", pattern=r"^[a-z][a-z0-9-]{0,31}$", description="what placed it (blender, ...)"
    )


class MarkOut(BaseModel):
    id: int
    music: str
    music_hash: str | None
    music_offset: float | None
    video: str | None
    video_in: float | None
    video_out: float | None
    project: str | None
    origin: str
    used_at: float
    note: str | None
    pair: bool = Field(description="it has its clip: a training pair, not only a used track")


class StatusOut(BaseModel):
    service: dict[str, Any]
    bundle: dict[str, Any]
    catalog: dict[str, Any]
    limits: dict[str, Any]


def _suggest_out(result: SearchResult) -> dict:
    return {
        "bundle": result.bundle_name,
        "bundle_kind": result.bundle_kind,
        "reads_pictures": result.reads_pictures,
        "header": result.header,
        "suggestions": [s.as_dict() for s in result.suggestions],
    }


def _wav(rendered, name: str) -> FileResponse:
    safe = re.sub(r"[^A-Za-z0-9 ._+-]", "_", name)[:120] or "excerpt"
    return FileResponse(
        rendered.path,
        media_type="audio/wav",
        filename=f"{safe}.wav",
        headers={"X-ViML-Excerpt-Kind": rendered.kind, "X-ViML-Excerpt-Note": _ascii(rendered.note)},
    )


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")  # HTTP headers are latin-1 at best


def _validation_message(error: RequestValidationError | ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "form"))
        parts.append(f"{where or 'body'}: {item.get('msg', 'invalid')}")
    return "malformed request: " + "; ".join(parts)


def create_app(work: Work | None, token: str) -> FastAPI:
    """The app over `work` (None: for the schema only) guarded by `token`."""
    app = FastAPI(
        title="ViML local service",
        version=API_VERSION,
        description="Music suggestions for editor panels. 127.0.0.1 only; `Authorization: Bearer TOKEN`.",
        docs_url=None,  # no pages: the service has no browser users
        redoc_url=None,
        openapi_url=None,  # served below, behind the token like everything else
    )
    limits = work.limits if work is not None else None

    def need() -> Work:
        assert work is not None, "the schema-only app has no work to do"
        return work

    @app.exception_handler(UserFacingError)
    async def user_error(_request: Request, error: UserFacingError) -> JSONResponse:
        status = 400
        if isinstance(error, NotFoundError):
            status = 404
        elif isinstance(error, MediaError):
            status = 422
        elif isinstance(error, TimedOutError):
            status = 504
        return error_response(status, str(error))

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(error))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, f"internal error: {type(error).__name__}: {error}")

    @app.get("/v1/status", response_model=StatusOut, summary="The bundle, the catalog and the limits")
    def status() -> dict:
        return {"service": {"api": API_VERSION}, **need().status()}

    @app.post("/v1/suggest", response_model=SuggestOut, summary="Rank the music for a clip and/or prompt")
    def suggest(body: SuggestIn) -> dict:
        return _suggest_out(need().suggest(body.request(body.video)))

    @app.post(
        UPLOAD_PATH,
        response_model=SuggestOut,
        summary="Rank the music for an uploaded still or short clip",
        description="multipart/form-data: `file` (a picture or a video) and `request` (SearchIn as JSON).",
    )
    def suggest_upload(
        file: Annotated[UploadFile, File(description="a still (PNG, JPEG) or a short clip")],
        request: Annotated[str, Form(description="SearchIn as JSON")] = "{}",
    ) -> dict:
        try:
            search = SearchIn.model_validate_json(request)
        except ValidationError as error:
            raise UserFacingError(_validation_message(error)) from error
        suffix = Path(file.filename or "").suffix
        folder = need().renders / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=folder, suffix=suffix if _SUFFIX.fullmatch(suffix) else ".bin", delete=False
        ) as out:
            while chunk := file.file.read(1 << 20):
                out.write(chunk)
        try:
            if Path(out.name).stat().st_size == 0:
                raise UserFacingError("the uploaded file is empty")
            return _suggest_out(need().suggest(search.request(out.name)))
        finally:
            with contextlib.suppress(OSError):
                Path(out.name).unlink()

    @app.post("/v1/similar", response_model=SimilarOut, summary="Tracks and parts that sound like a track")
    def similar(body: SimilarIn) -> dict:
        tracks, segments = need().similar(body.track, body.start, body.end, body.filters.filters(), body.top)
        return {"tracks": [t.as_dict() for t in tracks], "segments": [vars(s) for s in segments]}

    @app.post("/v1/marks", response_model=MarkOut, status_code=201, summary="Record a placed suggestion")
    def mark(body: MarkIn) -> dict:
        done = need().mark(
            body.track, body.origin, video=body.video, video_in=body.start, video_out=body.end,
            music_offset=body.offset, project=body.project,
        )  # fmt: skip
        return {**done.as_dict(), "pair": done.has_clip}

    @app.post(
        "/v1/excerpt",
        response_class=FileResponse,
        summary="The part of a track, fitted to a length, as a WAV",
        responses={200: {"content": {"audio/wav": {}}, "description": "the rendered WAV"}},
    )
    def excerpt(body: ExcerptIn) -> FileResponse:
        rendered = need().excerpt(body.path, body.start, body.duration, body.mode, body.target_lufs)
        return _wav(rendered, f"{Path(body.path).stem} {body.start:.2f}+{body.duration:.2f}")

    @app.get(
        "/v1/preview",
        response_class=FileResponse,
        summary="A track's audio as it is, from a time, as a WAV",
        responses={200: {"content": {"audio/wav": {}}, "description": "the WAV"}},
    )
    def preview(
        path: Annotated[str, Query(max_length=4096, description="a catalogued track")],
        start: Annotated[float, Query(description="seconds")] = 0.0,
        duration: Annotated[float, Query(description="seconds")] = 30.0,
    ) -> FileResponse:
        rendered = need().preview(path, start, duration)
        return _wav(rendered, f"{Path(path).stem} preview {start:.2f}")

    @app.get("/v1/openapi.json", include_in_schema=False)
    def schema() -> dict:
        return app.openapi()

    if limits is not None:
        app.add_middleware(
            Guard, token=token, max_body=limits.max_json_bytes, max_upload=limits.max_upload_bytes,
            upload_paths=(UPLOAD_PATH,),
        )  # fmt: skip
    else:
        app.add_middleware(Guard, token=token, max_body=1 << 20, max_upload=1 << 20, upload_paths=())
    return app


def openapi_schema() -> dict:
    """The API's OpenAPI document, as the running service serves it at /v1/openapi.json."""
    return json.loads(json.dumps(create_app(None, "schema").openapi()))


DOC_START, DOC_END = (
    "<!-- openapi: generated by `viml serve --openapi docs/sections/service.md` -->",
    "<!-- /openapi -->",
)


def openapi_markdown(schema: dict) -> str:
    """The generated part of docs/sections/service.md: an endpoint table and the whole schema."""
    rows = ["| method | path | what |", "|---|---|---|"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            rows.append(f"| {method.upper()} | `{path}` | {operation.get('summary', '')} |")
    body = json.dumps(schema, indent=2)
    return "\n".join([DOC_START, "", *rows, "", "<details><summary>OpenAPI schema (JSON)</summary>", "",
                      "```json", body, "```", "", "</details>", DOC_END])  # fmt: skip


def write_openapi(path: Path) -> None:
    """The schema as JSON (.json), or the generated part of a markdown page (.md) replaced in place."""
    schema = openapi_schema()
    if path.suffix != ".md":
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    if DOC_START not in text or DOC_END not in text:
        raise UserFacingError(f"{path} has no generated OpenAPI part ({DOC_START} ... {DOC_END})")
    head, rest = text.split(DOC_START, 1)
    tail = rest.split(DOC_END, 1)[1]
    path.write_text(head + openapi_markdown(schema) + tail, encoding="utf-8")
