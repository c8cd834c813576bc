"""`viml serve` over real HTTP on localhost: a child `viml serve --port 0` on a real catalog (the e2e
world, scanned with real musicnn + BeatNet) ranking with the demo bundle (reads pictures).

Checked: the token file is private and every request needs the token; foreign hosts and origins are
refused; malformed input gets a 4xx with a message; oversize bodies get 413 (declared and chunked);
concurrent requests are all answered, each as it would be alone; the ranking is exactly the CLI's
(`viml suggest --format json`, `viml similar`); an uploaded still or clip ranks as the same file by
path; excerpts and previews hold the track's own samples.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import e2e_helpers as e2e
import httpx
import numpy as np
import pytest
from service_helpers import library, running_service

UPLOAD_LIMIT_MB = 1


@pytest.fixture(scope="module")
def service():
    with running_service(library(), "--max-upload-mb", str(UPLOAD_LIMIT_MB)) as running:
        yield running


def post(service, path: str, headers: dict | None = None, **kwargs) -> httpx.Response:
    return httpx.post(
        service.url + path, headers={**service.headers(), **(headers or {})}, timeout=120, **kwargs
    )


def cli(service, command: str, *args: str) -> list | dict:
    lib = service.library
    done = e2e.viml(command, *args, "--catalog", str(lib.catalog), "--bundle", str(lib.bundle),
                    "--format", "json", home=lib.home)  # fmt: skip
    return json.loads(done.stdout[min(i for i in (done.stdout.find("["), done.stdout.find("{")) if i >= 0) :])


def world_video(index: int = 2) -> str:
    world = e2e.world()
    return str(world.video_path(world.pieces[index]))


# -- the door ------------------------------------------------------------------------------------------


def test_the_token_file_is_private_and_every_request_needs_it(service):
    folder = service.library.home / "service"
    assert stat.S_IMODE(os.stat(folder / "token").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert len(service.token) >= 40
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": service.token},
                    {"Authorization": f"Basic {service.token}"}):  # fmt: skip
        for method, path in (("GET", "/v1/status"), ("POST", "/v1/suggest"), ("GET", "/v1/openapi.json"),
                             ("GET", "/nowhere")):  # fmt: skip
            answer = httpx.request(method, service.url + path, headers=headers, json={"prompt": "x"})
            assert answer.status_code == 401, (headers, path)
            assert "token" in answer.json()["error"] and answer.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{service.url}/v1/status?token={service.token}").status_code == 401
    status = httpx.get(service.url + "/v1/status", headers=service.headers()).json()
    assert status["catalog"]["tracks"] == len(e2e.world().pieces) and status["bundle"]["reads_pictures"]
    assert httpx.get(service.url + "/nowhere", headers=service.headers()).status_code == 404
    schema = httpx.get(service.url + "/v1/openapi.json", headers=service.headers()).json()
    assert "/v1/suggest" in schema["paths"]


def test_foreign_hosts_and_origins_are_refused(service):
    headers = service.headers()
    answer = httpx.get(service.url + "/v1/status", headers={**headers, "Host": "evil.example:80"})
    assert answer.status_code == 403 and "127.0.0.1" in answer.json()["error"]
    for method in ("GET", "OPTIONS"):  # a page's request and its CORS pre-flight
        answer = httpx.request(
            method, service.url + "/v1/status",
            headers={**headers, "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
        )  # fmt: skip
        assert answer.status_code == 403 and "cross-origin" in answer.json()["error"]
        assert "access-control-allow-origin" not in answer.headers


def test_serve_refuses_other_hosts_before_opening_anything(tmp_path):
    for host in ("0.0.0.0", "192.168.1.10", "example.com", "::"):
        done = e2e.viml("serve", "--host", host, "--catalog", str(tmp_path / "none.sqlite"),
                        home=tmp_path, check=False, timeout=60)  # fmt: skip
        assert done.returncode == 1 and "this machine only" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"prompt": "calm", "top": "many"}, 422, "top"),
        ({"prompt": "calm", "colour": "blue"}, 422, "colour"),
        ({"prompt": "calm", "influence": 3}, 400, "influence must be between 0 and 1"),
        ({}, 400, "give a video clip, a prompt, or both"),
        ({"video": "/no/such/clip.mp4", "start": 0, "end": 4}, 400, "/no/such/clip.mp4"),
        ({"video": "WORLD_VIDEO", "start": 6, "end": 2}, 400, "must be after the in point"),
        ({"prompt": "calm", "filters": {"min_bpm": -4}}, 400, "min bpm"),
        ({"prompt": "calm", "pooling": "loudest"}, 400, "unknown pooling"),
    ],
)
def test_malformed_input_gets_a_4xx_with_a_message(service, body, status, words):
    body = {k: world_video() if v == "WORLD_VIDEO" else v for k, v in body.items()}
    answer = post(service, "/v1/suggest", json=body)
    assert answer.status_code == status and words in answer.json()["error"], answer.text


def test_malformed_bodies_and_unknown_tracks(service):
    not_json = post(service, "/v1/suggest", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422 and "malformed request" in not_json.json()["error"]
    missing = post(service, "/v1/excerpt", json={"path": "/etc/passwd", "start": 0, "duration": 2})
    assert missing.status_code == 404 and "not in the catalog" in missing.json()["error"]
    track = str(e2e.world().music_path(e2e.world().pieces[0]))
    for body, words in (({"start": 0, "duration": 0}, "duration must be above 0"),
                        ({"start": -1, "duration": 2}, "start must be"),
                        ({"start": 0, "duration": 2, "mode": "loud"}, "unknown excerpt mode")):  # fmt: skip
        answer = post(service, "/v1/excerpt", json={"path": track, **body})
        assert answer.status_code == 400 and words in answer.json()["error"]
    similar = post(service, "/v1/similar", json={"track": "/not/catalogued.wav"})
    assert similar.status_code == 404
    broken = post(service, "/v1/suggest/upload", files={"file": ("clip.mp4", b"not a video")},
                  data={"request": '{"prompt": "calm"}'})  # fmt: skip
    assert broken.status_code == 422 and broken.json()["error"], broken.text
    bad_request = post(service, "/v1/suggest/upload", files={"file": ("a.png", b"x")}, data={"request": "{"})
    assert bad_request.status_code == 400 and "malformed request" in bad_request.json()["error"]


def test_oversize_bodies_are_refused(service):
    big = b"\0" * (UPLOAD_LIMIT_MB * 2 << 20)
    declared = post(service, "/v1/suggest/upload", files={"file": ("clip.mp4", big)})
    assert declared.status_code == 413 and "larger than" in declared.json()["error"]

    def chunks():  # no Content-Length: the guard counts while it streams
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n\r\n'
        for _ in range(UPLOAD_LIMIT_MB * 4):
            yield b"\0" * (1 << 19)

    streamed = post(service, "/v1/suggest/upload", content=chunks(),
                    headers={"Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert streamed.status_code == 413
    assert post(service, "/v1/suggest", content=b" " * (2 << 20)).status_code == 413  # JSON bodies: 1 MiB
    assert post(service, "/v1/suggest", json={"prompt": "calm"}).status_code == 200  # still serving


def test_concurrent_requests_are_answered_as_alone(service):
    prompts = ["calm piano", "fast drums", "dark synth", "happy guitar", "ambient pads", "loud rock"]
    alone = {p: post(service, "/v1/suggest", json={"prompt": p, "top": 4}).json() for p in prompts}
    track = str(e2e.world().music_path(e2e.world().pieces[1]))

    def one(i: int) -> tuple[str, httpx.Response]:
        if i % 4 == 3:
            return "preview", httpx.get(service.url + "/v1/preview", headers=service.headers(),
                                        params={"path": track, "duration": 2}, timeout=120)  # fmt: skip
        prompt = prompts[i % len(prompts)]
        return prompt, post(service, "/v1/suggest", json={"prompt": prompt, "top": 4})

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, range(24)))
    assert all(a.status_code == 200 for _, a in answers), [a.text for _, a in answers if a.status_code != 200]
    for name, answer in answers:
        if name != "preview":
            assert answer.json() == alone[name]


# -- the same search as the CLI -------------------------------------------------------------------------


def test_the_ranking_is_the_clis(service):
    video = world_video()
    cases = [
        (["--prompt", "calm ambient pads"], {"prompt": "calm ambient pads"}),
        ([video, "--in", "1", "--out", "7"], {"video": video, "start": 1, "end": 7}),
        ([video, "--in", "0", "--out", "8", "--prompt", "jazz piano", "--influence", "0.7", "-n", "3"],
         {"video": video, "start": 0, "end": 8, "prompt": "jazz piano", "influence": 0.7, "top": 3}),
        (["--prompt", "drums", "--bpm", "100-140", "--duration", "9-"],
         {"prompt": "drums", "filters": {"min_bpm": 100, "max_bpm": 140, "min_duration": 9}}),
    ]  # fmt: skip
    for args, body in cases:
        expected = cli(service, "suggest", *args)
        answer = post(service, "/v1/suggest", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["suggestions"] == expected, args
        assert expected, args
    track = str(e2e.world().music_path(e2e.world().pieces[0]))
    expected = cli(service, "similar", track, "-n", "4")
    answer = post(service, "/v1/similar", json={"track": track, "top": 4}).json()
    assert answer == expected and answer["tracks"]


def test_an_uploaded_still_or_clip_ranks_as_the_same_file_by_path(service, tmp_path):
    video = world_video(3)
    with av.open(video) as container:
        frame = next(f for f in container.decode(video=0) if f.time is not None and f.time >= 2.0)
        still = tmp_path / "still.png"
        frame.to_image().save(still)
    for file, fields in ((still, {"prompt": "warm"}), (Path(video), {"start": 1.0, "end": 5.0})):
        by_path = post(service, "/v1/suggest", json={"video": str(file), **fields})
        uploaded = post(service, "/v1/suggest/upload", files={"file": (file.name, file.read_bytes())},
                        data={"request": json.dumps(fields)})  # fmt: skip
        assert by_path.status_code == uploaded.status_code == 200, uploaded.text
        ranked = [(s["path"], s["score"], s["start"]) for s in uploaded.json()["suggestions"]]
        assert ranked == [(s["path"], s["score"], s["start"]) for s in by_path.json()["suggestions"]]
    assert not list((service.library.home / "cache" / "service" / "uploads").iterdir())  # cleaned up


# -- audio ----------------------------------------------------------------------------------------------


def wav(data: bytes) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        frames = [f.to_ndarray().reshape(-1, channels) for f in container.decode(stream)]  # interleaved s16
        return np.concatenate(frames).astype(np.float32) / 32768.0, stream.rate


def source(path: str) -> tuple[np.ndarray, int]:
    from viml.engine.music.fit import read_source_audio

    return read_source_audio(path)


def test_excerpts_and_previews_hold_the_tracks_samples(service):
    suggestion = post(service, "/v1/suggest", json={"prompt": "jazz", "top": 1}).json()["suggestions"][0]
    path = suggestion["path"]
    audio, rate = source(path)

    preview = httpx.get(service.url + "/v1/preview", headers=service.headers(),
                        params={"path": path, "start": 1.5, "duration": 3})  # fmt: skip
    heard, heard_rate = wav(preview.content)
    first = round(1.5 * rate)
    assert heard_rate == rate and heard.shape == (3 * rate, audio.shape[1])
    assert np.abs(heard - audio[first : first + 3 * rate]).max() < 2 / 32768  # the samples, 16-bit

    plain = post(service, "/v1/excerpt", json={"path": path, "start": 1.5, "duration": 4, "mode": "plain"})
    assert plain.headers["x-viml-excerpt-kind"] == "plain"
    cut, _ = wav(plain.content)
    assert cut.shape == (4 * rate, audio.shape[1])
    middle = slice(rate, 3 * rate)  # between the fades: the source, gained to -16 LUFS
    original = audio[first : first + 4 * rate][middle]
    gain = float(np.dot(cut[middle].ravel(), original.ravel()) / np.dot(original.ravel(), original.ravel()))
    assert gain > 0 and np.abs(cut[middle] - gain * original).max() < 3 / 32768

    fitted = post(service, "/v1/excerpt", json={"path": path, "start": suggestion["start"], "duration": 6})
    assert fitted.status_code == 200 and fitted.headers["x-viml-excerpt-kind"] == "fitted"
    assert "bar" in fitted.headers["x-viml-excerpt-note"]
    edit, _ = wav(fitted.content)
    assert edit.shape == (6 * rate, audio.shape[1])  # exactly the asked length at the source's rate
    again = post(service, "/v1/excerpt", json={"path": path, "start": suggestion["start"], "duration": 6})
    assert again.content == fitted.content  # from the render cache


def test_without_beats_auto_falls_back_to_a_plain_excerpt(tmp_path, monkeypatch):
    """A catalog without rhythm and no converted BeatNet (this test's own VIML_HOME has none)."""
    from viml.core.errors import UserFacingError
    from viml.engine.runtime import open_bundle
    from viml.search.service.work import Work

    lib = library()
    monkeypatch.setenv("VIML_RHYTHM", "0")
    catalog = tmp_path / "no-rhythm.sqlite"
    e2e.viml("scan", str(e2e.world().root / "music"), "--catalog", str(catalog), "--bundle", str(lib.bundle),
             "-j", "1", home=lib.home)  # fmt: skip
    work = Work(catalog, open_bundle(lib.bundle))
    track = str(e2e.world().music_path(e2e.world().pieces[0]))
    rendered = work.excerpt(track, 1.0, 4.0)
    assert rendered.kind == "plain" and "convert-beatnet" in rendered.note
    assert av.open(str(rendered.path)).streams.audio[0].duration is not None
    with pytest.raises(UserFacingError, match="beats are not in the catalog"):
        work.excerpt(track, 1.0, 4.0, mode="fitted")


def test_the_client_the_add_ons_ship_talks_to_the_service(service, tmp_path):
    """viml/integrations/viml_client.py in a plain interpreter, finding the service by its files."""
    client = Path(__file__).resolve().parent.parent / "viml" / "integrations"
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(client)!r})\n"
        "from viml_client import Service, ServiceError\n"
        "service = Service()\n"
        "found = service.suggest(prompt='jazz', top=2)['suggestions']\n"
        f"out, kind, note = service.excerpt(found[0]['path'], found[0]['start'], 3.0, {str(tmp_path / 'x.wav')!r})\n"
        "try:\n"
        "    Service(token='wrong').status()\n"
        "except ServiceError as error:\n"
        "    refused = [error.status, error.message]\n"
        "print(json.dumps([len(found), kind, refused]))\n"
    )
    env = {"VIML_HOME": str(service.library.home), "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    count, kind, refused = json.loads(done.stdout)
    assert count == 2 and kind == "fitted" and refused[0] == 401 and "token" in refused[1]
    assert (tmp_path / "x.wav").stat().st_size > 1000


def test_the_docs_hold_the_apps_current_schema():
    from viml.search.service.app import DOC_END, DOC_START, openapi_markdown, openapi_schema

    text = (Path(__file__).resolve().parent.parent / "docs" / "sections" / "service.md").read_text("utf-8")
    written = DOC_START + text.split(DOC_START, 1)[1].split(DOC_END, 1)[0] + DOC_END
    assert written == openapi_markdown(openapi_schema()), (
        "docs/sections/service.md is out of date: run `viml serve --openapi docs/sections/service.md`"
    )
