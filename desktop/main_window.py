"""The main window: library on the left, the clip and the prompt in the middle, results below.

Views and wiring only: long work goes to `workers` (thread pool) and `backend` (the product API).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, QUrl
from PySide6.QtGui import (
    QAction,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from viml.desktop import backend, waveform, workers
from viml.desktop.audition import AuditionEngine, NowPlaying, matched_gain, stored_loudness
from viml.desktop.excerpts import Excerpt, ExcerptRequest, ExcerptService
from viml.desktop.library import LibraryPanel, OwnDragGuard, scan_summary_text
from viml.desktop.player import ClipPlayer
from viml.desktop.refine import Refiner
from viml.desktop.result_columns import ResultColumns
from viml.desktop.results import (
    WHOLE_FILE_KEY,
    ResultsModel,
    ResultsView,
    Suggestion,
    file_mime_data,
)
from viml.desktop.search_bar import EXAMPLE_PROMPTS, SearchBar  # noqa: F401 (EXAMPLE_PROMPTS: was here)
from viml.desktop.settings import AppSettings
from viml.desktop.style import STYLESHEET, eliding_label, eliding_status_bar
from viml.desktop.waveform import WaveformDelegate

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".mxf"}
TIMELINE_EXTENSIONS = {".otio", ".edl", ".xml", ".fcpxml"}
LIBRARY_REFRESH_SECONDS = 1.0


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings, audio_device: int | str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.setWindowTitle("ViML — music for your clip")
        self.setAcceptDrops(True)
        self.setStyleSheet(STYLESHEET)
        self.resize(1180, 720)
        self.pool = QThreadPool.globalInstance()
        self.scan_task: workers.Task | None = None
        self.kept_tasks: set[workers.Task] = set()  # one-off tasks (export, timeline read) until done
        self.scan_process: backend.ScanProcess | None = None
        self.scan_queue: list[str] = []
        self.scan_retry: set[str] = set()  # queued folders whose failed files are tried again (Rescan)
        self.library_reader = backend.LibraryReader()
        self.library_task: workers.Task | None = None
        self.library_again = False
        self.library_seen, self.library_refreshed = -1, 0.0
        self.scan_problems: dict[str, str] = {}  # music folder -> why its last scan could not run
        self.scan_summaries: dict[str, dict] = {}  # music folder -> its last finished scan's summary
        self.pending_removals: list[str] = []  # folders to forget once their running scan has stopped

        self.library = LibraryPanel(self)
        self.player = ClipPlayer(self)
        self.search_bar = SearchBar(settings, self)  # prompt, influence, examples, filters
        self.prompt, self.influence = self.search_bar.prompt, self.search_bar.influence
        self.timeline_music: set[str] = set()  # the music of the timeline the clip came from
        self.timeline_source: str | None = None
        self.results_model = ResultsModel(self)
        self.results = ResultsView(self)
        self.results.setModel(self.results_model)
        self.results.setItemDelegateForColumn(ResultsModel.CURVE_COLUMN, WaveformDelegate(self.results))
        self.results.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.results.setSelectionMode(QAbstractItemView.SingleSelection)
        self.results.setDragEnabled(True)
        self.results.setDragDropMode(QAbstractItemView.DragOnly)
        self.results.setMouseTracking(True)  # hovering a row prepares its excerpt (`entered`)
        self.results.verticalHeader().hide()
        self.results.setWordWrap(False)
        self.results.verticalHeader().setDefaultSectionSize(waveform.ROW_HEIGHT)
        header = self.results.horizontalHeader()
        # Text columns sized to their content, the title readable (the table scrolls when narrow).
        self.result_columns = ResultColumns(
            self.results, ResultsModel.TRACK_COLUMN, ResultsModel.TAGS_COLUMN, ResultsModel.CURVE_COLUMN,
            waveform.CELL_WIDTH, artist=ResultsModel.COLUMNS.index("Artist"),
        )  # fmt: skip
        header.setSortIndicator(0, Qt.AscendingOrder)  # by rank until a header is clicked
        self.results.setSortingEnabled(True)
        self.results_hint = eliding_label(self)
        self.audition_button = QPushButton("Audition", self)
        self.stop_button = QPushButton("Stop", self)
        copy_button = QPushButton("Copy path", self)
        reveal_button = QPushButton("Reveal in folder", self)
        export_button = QPushButton("Export timeline…", self)
        used_button = QPushButton("Used in this edit", self)
        used_button.setToolTip("Remember this suggestion as used with the clip (a pair to learn from)")
        self.used_action = QAction("Used in this edit", self)  # also on a result's context menu
        self.used_action.triggered.connect(self.mark_used)
        self.results.addAction(self.used_action)
        self.results.setContextMenuPolicy(Qt.ActionsContextMenu)
        self.refine = Refiner(self)  # "More like this…": a result as the reference, moved by words
        self.results.addAction(self.refine.action)

        self.query = workers.LatestOnly(debounce_ms=250, parent=self)
        self.audio_device = audio_device  # given: it wins over the Settings' output (tests, --device)
        self.audition = AuditionEngine(
            self.player.clock, device=audio_device if audio_device is not None else settings.audio_device
        )
        self.now_playing = NowPlaying(self.player.clock, parent=self)  # the results' now-playing marker
        self._connect_audition()
        self.audition_task: workers.Task | None = None
        self.audition_request: ExcerptRequest | None = None  # what the audition being loaded plays
        # What a drag carries and an audition plays: the suggestion's part, fitted to the clip's length.
        self.excerpts = ExcerptService(lambda: backend.catalog_path(self.settings.catalog), parent=self)
        self.pending_drag: ExcerptRequest | None = None  # a drag waiting for its excerpt's render
        self.pending_audition: tuple[ExcerptRequest, Suggestion] | None = None

        self._build_layout(copy_button, reveal_button, export_button, used_button)
        self._build_menus()

        self.library.addFolderRequested.connect(self.choose_music_folder)
        self.library.removeFolderRequested.connect(self.remove_music_folder)
        self.library.rescanFolderRequested.connect(self.rescan)
        self.drop_guard = OwnDragGuard(self)  # the app's own drags are never drops into the library
        self.library.scanRequested.connect(self.scan_all)
        self.library.pauseRequested.connect(self.pause_scan)
        self.library.cancelRequested.connect(self.cancel_scan)
        self.player.rangeChanged.connect(lambda *_: self.request_query())
        self.player.failed.connect(self.show_message)
        self.search_bar.changed.connect(lambda: self.request_query())
        self.query.result.connect(self.show_results)
        self.query.error.connect(self.show_query_error)
        self.query.busy.connect(lambda busy: busy and self.results_hint.setText("Searching…"))
        self.results.doubleClicked.connect(lambda index: self.start_audition(index.row()))
        self.results.selectionModel().currentRowChanged.connect(
            lambda index, _: self.prepare_excerpt(index.row())
        )
        self.results.entered.connect(lambda index: self.prepare_excerpt(index.row()))
        self.results.dragRequested.connect(self.start_drag)
        self.excerpts.ready.connect(self._excerpt_ready)
        self.excerpts.failed.connect(self._excerpt_failed)
        self.audition_button.clicked.connect(self._audition_selected)
        self.stop_button.clicked.connect(self.stop_audition)
        copy_button.clicked.connect(self.copy_path)
        reveal_button.clicked.connect(self.reveal_in_folder)
        export_button.clicked.connect(self.choose_export_path)
        used_button.clicked.connect(self.mark_used)

        self.bundle_label = eliding_label(self)
        self.bundle_label.setText("Bundle: opening…")
        self.statusBar().addPermanentWidget(self.bundle_label)
        self.bundle_task: workers.Task | None = None
        self.bundle_info: backend.BundleInfo | None = None

        self.library.set_folders(self.settings.music_folders)
        self.refresh_library()
        self.open_bundle()
        self.show_results([])

    # -- layout -----------------------------------------------------------------------------------
    def _build_layout(self, *result_buttons: QPushButton) -> None:
        """Library | (player / (search bar, suggestions, their buttons)), in splitters the user can drag.

        Sized to hold at 1024×640 as at 1920×1080 (tests/test_desktop_layout.py): the results' hint sits
        beside the "Suggestions" title, where it has room (beside six buttons it got none), and the
        vertical splitter gives the results what the picture does not need."""
        self.setStatusBar(eliding_status_bar(self))  # a long message elided, whole in the tooltip
        title = QHBoxLayout()
        title.addWidget(QLabel("<b>Suggestions</b> — drag one into your editor", self))
        title.addSpacing(12)
        title.addWidget(self.results_hint, 1)
        buttons = QHBoxLayout()
        for button in (self.audition_button, self.stop_button, *result_buttons):
            buttons.addWidget(button)
        buttons.addStretch(1)

        lower = QWidget(self)
        column = QVBoxLayout(lower)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.search_bar)
        column.addLayout(title)
        column.addWidget(self.results, 1)
        column.addLayout(buttons)
        self.centre_splitter = centre = QSplitter(Qt.Vertical, self)
        centre.addWidget(self.player)
        centre.addWidget(lower)
        centre.setChildrenCollapsible(False)
        centre.setStretchFactor(0, 2)
        centre.setStretchFactor(1, 3)
        centre.setSizes([300, 420])

        self.splitter = splitter = QSplitter(self)
        splitter.addWidget(self.library)
        splitter.addWidget(centre)
        splitter.setChildrenCollapsible(False)
        # The suggestions' columns need the width more than the track list: it grows a third as fast.
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([400, 780])
        outer = QWidget(self)
        layout = QVBoxLayout(outer)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(splitter)
        self.setCentralWidget(outer)
        self.statusBar().showMessage("Ready")

    def _build_menus(self) -> None:
        def action(menu, text, slot, shortcut=None):
            item = QAction(text, self)
            if shortcut:
                item.setShortcut(QKeySequence(shortcut))
            item.triggered.connect(slot)
            menu.addAction(item)
            return item

        files = self.menuBar().addMenu("&File")
        action(files, "Open video…", self.choose_video, "Ctrl+O")
        action(files, "Open timeline…", self.choose_timeline, "Ctrl+Shift+O")
        action(files, "Add music folder…", self.choose_music_folder)
        action(files, "Export timeline…", self.choose_export_path, "Ctrl+E")
        files.addSeparator()
        action(files, "Quit", self.close, "Ctrl+Q")
        tools = self.menuBar().addMenu("&Tools")
        action(tools, "Batch tag a folder…", self.open_batch_tag)
        action(tools, "Learn from my edits…", self.open_learn)
        action(tools, "Settings…", self.open_settings, "Ctrl+,")

    # -- messages ---------------------------------------------------------------------------------
    def show_message(self, message: str) -> None:
        log.info("%s", message)
        self.statusBar().showMessage(message, 10000)

    # -- model bundle ---------------------------------------------------------------------------
    def open_bundle(self) -> None:
        """Open the ranking bundle in the background (the first query then finds it open) and show its
        kind in the status bar: trained, zero-shot or demo."""
        bundle = self.settings.bundle
        self.bundle_label.setText("Bundle: opening…")
        task = workers.Task(lambda token: backend.open_bundle(bundle))
        task.signals.result.connect(self._bundle_opened)
        task.signals.error.connect(self._bundle_failed)
        task.signals.finished.connect(lambda: setattr(self, "bundle_task", None))
        self.bundle_task = task
        workers.start(task, self.pool)

    def _bundle_opened(self, info: backend.BundleInfo) -> None:
        self.bundle_info = info
        self.bundle_label.setText(info.label)
        self.bundle_label.setToolTip(f"{info.label}\n{info.description}")
        self.library.set_problem("bundle", None)

    def _bundle_failed(self, message: str) -> None:
        self.bundle_info = None
        self.bundle_label.setText("Bundle: none")
        self.bundle_label.setToolTip(message)
        # A standing line beside the library's: the status bar's next message would hide it at once.
        self.library.set_problem("bundle", f"No suggestions: {message}")

    # -- library and scanning ---------------------------------------------------------------------
    def refresh_library(self) -> None:
        """Re-read the library off the GUI thread; requests that arrive during a read are merged into
        one more read after it, so a busy scan never queues a pile of them."""
        if self.library_task is not None:
            self.library_again = True
            return
        self.library_again = False
        catalog_file = backend.catalog_path(self.settings.catalog)
        folders = self.settings.music_folders
        reasons = self.unscanned_reasons()
        task = workers.Task(lambda token: self.library_reader.read(catalog_file, folders, reasons=reasons))
        task.signals.result.connect(self.library.set_rows)
        task.signals.error.connect(self.show_message)
        task.signals.finished.connect(self._library_read)
        self.library_task = task
        workers.start(task, self.pool)

    def unscanned_reasons(self) -> dict[str, str]:
        """Why each folder's unscanned files are not analysed yet (others: backend.NOT_SCANNED)."""
        reasons = {folder: "waiting for its scan" for folder in self.scan_queue}
        if self.scan_process is not None:
            reasons[self.scan_process.folder] = "being scanned"
        for folder, problem in self.scan_problems.items():
            reasons.setdefault(folder, f"not analysed: {problem}")
        return reasons

    def _library_read(self) -> None:
        self.library_task = None
        if self.library_again:
            self.refresh_library()

    def _scan_progress(self, done: int, total: int, message: str) -> None:
        self.library.set_progress(done, total, message)
        # Show newly committed tracks about once a second (each read is incremental, see LibraryReader).
        now = time.monotonic()
        if done != self.library_seen and now - self.library_refreshed >= LIBRARY_REFRESH_SECONDS:
            self.library_seen, self.library_refreshed = done, now
            self.refresh_library()

    def choose_music_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a music folder")
        if folder:
            self.add_music_folders([folder])

    def add_music_folders(self, folders: list[str]) -> None:
        known = self.settings.music_folders
        added = []
        for folder in dict.fromkeys(os.path.abspath(f) for f in folders):
            problem = backend.special_file_problem(folder, folder_ok=True)
            if problem is not None:
                self.show_message(problem)
            elif folder not in known:
                added.append(folder)
        self.settings.music_folders = known + added
        self.library.set_folders(self.settings.music_folders)
        self.refresh_library()
        if added:
            self.scan(added)

    def remove_music_folder(self, folder: str) -> None:
        """Forget a music folder: its tracks leave the catalog (backend.remove_folder_tracks), so the
        library and the suggestions stop showing them. A scan of it is stopped first (it would commit
        files after the removal)."""
        folder = os.path.abspath(folder)
        if folder not in self.settings.music_folders or folder in self.pending_removals:
            return
        self.scan_queue = [queued for queued in self.scan_queue if queued != folder]
        if self.scan_process is not None and self.scan_process.folder == folder:
            self.pending_removals.append(folder)
            assert self.scan_task is not None
            self.scan_task.token.cancel()
            self.show_message(f"Stopping the scan of {folder} to remove it…")
            return
        self._forget_folder(folder)

    def _forget_folder(self, folder: str) -> None:
        remaining = [other for other in self.settings.music_folders if other != folder]
        catalog_file = backend.catalog_path(self.settings.catalog)
        task = workers.Task(lambda token: backend.remove_folder_tracks(catalog_file, folder, remaining))
        task.signals.result.connect(lambda count: self._folder_forgotten(folder, count))
        task.signals.error.connect(lambda message: self.show_message(f"{folder} not removed: {message}"))
        workers.start(self.keep(task), self.pool)

    def _folder_forgotten(self, folder: str, count: int) -> None:
        self.settings.music_folders = [other for other in self.settings.music_folders if other != folder]
        self.library.set_folders(self.settings.music_folders)
        self.scan_problems.pop(folder, None)
        self.library.set_problem(f"scan:{folder}", None)
        self.show_message(f"Removed {folder} from the library ({count} files forgotten)")
        self.refresh_library()
        self.request_query()

    def scan_all(self) -> None:
        self.scan(self.settings.music_folders)

    def scan(self, folders: list[str]) -> None:
        self.scan_queue += [f for f in folders if f not in self.scan_queue]
        if self.scan_task is None:
            self._scan_next()

    def rescan(self, folder: str) -> None:
        """Rescan one folder on the user's request: its files that failed before are tried again too (a
        plain scan skips them until they change; the user may have mended them since)."""
        self.scan_retry.add(folder)
        self.scan([folder])

    def _scan_next(self) -> None:
        if not self.scan_queue:
            self.library.set_scanning(False)
            return
        folder = self.scan_queue.pop(0)
        retry = folder in self.scan_retry
        self.scan_retry.discard(folder)
        process = backend.ScanProcess(
            folder, backend.catalog_path(self.settings.catalog), self.settings.analyzer, retry_failed=retry
        )
        task = workers.Task(lambda token: process.run(token.progress, lambda: token.cancelled))
        task.signals.progress.connect(self._scan_progress)
        task.signals.result.connect(lambda summary: self._scan_finished(folder, summary))
        task.signals.error.connect(lambda message: self._scan_failed(folder, message))
        task.signals.cancelled.connect(lambda: self.show_message(f"Scan of {folder} cancelled"))
        task.signals.finished.connect(self._scan_task_done)
        self.scan_task, self.scan_process = task, process
        self.library.set_scanning(True)
        self.show_message(f"Scanning {folder}…")
        workers.start(task, self.pool)

    def _scan_finished(self, folder: str, summary: dict) -> None:
        if summary.get("cancelled"):
            return
        self.scan_problems.pop(folder, None)
        self.scan_summaries[folder] = summary
        self.library.set_problem(f"scan:{folder}", None)
        self.library.set_folder_note(folder, scan_summary_text(folder, summary))
        self.show_message(scan_summary_text(folder, summary))

    def _scan_failed(self, folder: str, message: str) -> None:
        """A scan that could not run at all (e.g. the music model is not converted): said in the library
        panel until a scan of the folder works, and as the reason of each of its unscanned files."""
        self.scan_problems[folder] = message
        reason = message.removeprefix(f"scan of {folder} failed: ")
        self.library.set_problem(f"scan:{folder}", f"{Path(folder).name} not scanned: {reason}")
        self.show_message(message)

    def _scan_task_done(self) -> None:
        self.scan_task, self.scan_process = None, None
        for folder in self.pending_removals:
            self._forget_folder(folder)
        self.pending_removals.clear()
        self.refresh_library()
        self.request_query()
        self._scan_next()

    def pause_scan(self, paused: bool) -> None:
        if self.scan_process is not None:
            (self.scan_process.pause if paused else self.scan_process.resume)()
            self.show_message("Scan paused" if paused else "Scan resumed")

    def cancel_scan(self) -> None:
        self.scan_queue.clear()
        if self.scan_task is not None:
            self.scan_task.token.cancel()

    # -- clip -------------------------------------------------------------------------------------
    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a video", "", "Video (*.mp4 *.mov *.mkv *.webm *.avi *.m4v)"
        )
        if path:
            self.open_video(path)

    def open_video(
        self,
        path: str,
        in_point: float | None = None,
        out_point: float | None = None,
        timeline: str | None = None,
    ) -> None:
        """Open a clip; `timeline`: the timeline it came from, whose music "Not used in this edit" leaves out."""
        problem = backend.special_file_problem(path)  # a FIFO or /proc file would block its reader
        if problem is not None:
            self.show_message(problem)
            return
        self.stop_audition()
        self.read_timeline_music(timeline)
        self.player.open(path, in_point, out_point)
        self.player.setFocus()
        self.show_message(f"Opened {path} — set in/out with I and O")

    def choose_timeline(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a timeline", "", "Timelines (*.otio *.edl *.xml *.fcpxml)"
        )
        if path:
            self.open_timeline(path)

    def open_timeline(self, path: str) -> None:
        from viml.desktop.dialogs import pick_timeline_clip

        problem = backend.special_file_problem(path)  # OTIO's reader would block the whole process on it
        if problem is not None:
            self.show_message(problem)
            return
        pick_timeline_clip(self, path)  # read in a worker

    def read_timeline_music(self, timeline: str | None) -> None:
        """The music files already on the clip's timeline (none without one), read in the background."""
        self.timeline_music, self.timeline_source = set(), timeline
        if timeline is None:
            return

        def read(music: list[str]) -> None:
            if self.timeline_source != timeline:
                return  # another clip was opened since
            self.timeline_music = set(music)
            if music and self.search_bar.not_used.isChecked():
                self.request_query()

        task = workers.Task(lambda token: backend.timeline_music(timeline))
        task.signals.result.connect(read)
        task.signals.error.connect(self.show_message)
        workers.start(self.keep(task), self.pool)

    # -- queries ----------------------------------------------------------------------------------
    def query_parameters(self) -> dict:
        video = str(self.player.path) if self.player.path else None
        return {
            "catalog_file": backend.catalog_path(self.settings.catalog),
            "bundle": self.settings.bundle,
            "video": video,
            "in_point": self.player.in_point,
            "out_point": self.player.out_point,
            "prompt": self.prompt.text().strip(),
            "influence": self.influence.value() / 100.0,
            "filters": self.search_bar.filters(exclude=self.timeline_music),
        }

    def request_query(self, immediately: bool = False) -> None:
        parameters = self.refine.apply(self.query_parameters())
        if parameters["video"] is None and not parameters["prompt"] and not parameters.get("like"):
            self.query.cancel()
            self.show_results([])
            return
        if parameters["video"] is not None and parameters["out_point"] <= parameters["in_point"]:
            return  # the clip is still loading: its duration sets the out point, which asks again
        self.query.submit(lambda token: backend.suggest(token=token, **parameters), immediately=immediately)

    def show_results(self, suggestions: list[Suggestion]) -> None:
        self.results_model.set_suggestions(suggestions)
        self.now_playing.tick(again=True)  # the auditioned track's marker on its new row, if any
        if suggestions:
            self.results.selectRow(0)
            self.results_hint.setText(f"{len(suggestions)} tracks — Enter or double-click to audition")
        elif self.player.path is None and not self.prompt.text().strip():
            self.results_hint.setText("Open a video or type a prompt to get suggestions.")
        elif self.search_bar.filtering():
            self.results_hint.setText("No suggestions match the filters.")
        else:
            self.results_hint.setText("No suggestions.")
        if self.refine.current is not None:  # "Like <title>: <words> — 20 tracks ..."
            self.results_hint.setText(self.refine.hint(self.results_hint.text()))

    def show_query_error(self, message: str) -> None:
        self.results_model.set_suggestions([])
        self.results_hint.setText(message)
        self.show_message(message)

    def selected_suggestion(self) -> Suggestion | None:
        rows = self.results.selectionModel().selectedRows()
        return self.results_model.suggestion(rows[0].row()) if rows else None

    # -- audition ---------------------------------------------------------------------------------
    def _connect_audition(self) -> None:
        """Loop and volume from the settings, kept there; Enter/Esc beside the player's transport keys;
        the now-playing position to the results (when they can show it)."""
        self.player.set_loop(self.settings.audition_loop)
        self.player.set_volume(self.settings.preview_volume)
        self.audition.volume = self.player.volume_gain
        self.player.loopChanged.connect(lambda loop: setattr(self.settings, "audition_loop", loop))
        self.player.volumeChanged.connect(self._volume_changed)
        self.player.rangeFinished.connect(self.stop_audition)
        for key in (Qt.Key_Return, Qt.Key_Enter):
            self.player.keys.bind(key, self._audition_selected)
        self.player.keys.bind(Qt.Key_Escape, self.stop_audition)
        self.now_playing.moved.connect(self._show_now_playing)

    def _show_now_playing(self, path: str, music_seconds: float) -> None:
        """The marker on the auditioned track's row, found by path (sorting or new results move it)."""
        show = getattr(self.results_model, "set_now_playing", None)  # the waveform results' marker
        if show is not None:
            row = next((n for n, s in enumerate(self.results_model.rows) if path and s.path == path), None)
            show(row, music_seconds)

    def use_audio_device(self) -> None:
        """The Settings' audio output for the next audition (one given to the window still wins)."""
        device = self.audio_device if self.audio_device is not None else self.settings.audio_device
        if device != self.audition.device:
            self.stop_audition()
            self.audition.device = device

    def _volume_changed(self, fraction: float) -> None:
        self.audition.volume = self.player.volume_gain
        self.settings.preview_volume = fraction

    def _audition_selected(self) -> None:
        rows = self.results.selectionModel().selectedRows()
        if rows:
            self.start_audition(rows[0].row())

    def start_audition(self, row: int) -> None:
        """Play the clip from its in point with the suggestion's fitted edit (the excerpt a drag carries,
        at FIT_LUFS) starting there; the track from its best offset as before when no beats are known."""
        suggestion = self.results_model.suggestion(row)
        if self.player.path is None:
            self.show_message("Open a video to audition music against it")
            return
        self.stop_audition()
        request = self.excerpt_request(suggestion)
        excerpt = self.excerpts.prepare(request, immediately=True)
        if excerpt is not None:
            self._load_audition(suggestion, request, excerpt)
        else:
            self.pending_audition = (request, suggestion)
            self.show_message(f"Fitting {suggestion.title} to the clip…")

    def _load_audition(
        self, suggestion: Suggestion, request: ExcerptRequest, excerpt: Excerpt | None
    ) -> None:
        """Decode off the GUI thread: the fitted edit (edit time 0 at the clip's in point, already at
        FIT_LUFS), or, without one (`excerpt` None or not fitted), the track from its best offset with a
        second to spare, gained to FIT_LUFS from its stored loudness so suggestions compare fairly."""
        rate, in_point = self.audition.sample_rate, self.player.in_point
        if excerpt is not None and excerpt.fitted:
            start = offset = 0.0
            task = workers.Task(lambda token: (backend.read_excerpt(excerpt.path, rate), 1.0))
        else:
            start = offset = suggestion.offset
            end = start + (self.player.out_point - in_point) + 1.0
            catalog_file = backend.catalog_path(self.settings.catalog)

            def read(_token) -> tuple:
                music = backend.read_music(suggestion.path, start, end, rate)
                return music, matched_gain(music, rate, stored_loudness(catalog_file, suggestion.path))

            task = workers.Task(read)
        task.signals.result.connect(
            lambda loaded: self._play_audition(suggestion, request, excerpt, *loaded, start, offset, in_point)
        )
        task.signals.error.connect(self.show_message)
        self.audition_task, self.audition_request = task, request
        self.show_message(f"Loading {suggestion.title}…")
        workers.start(task, self.pool)

    def _play_audition(self, suggestion, request, excerpt, music, gain, start, offset, in_point) -> None:
        if self.audition_request != request:
            return  # another audition (or a stop) came since this one was asked for
        out_point = self.player.out_point
        self.audition.load(music, self.audition.sample_rate, start, offset, in_point, out_point, gain)
        problem = AuditionEngine.output_available(self.audition.device)
        if problem is None:
            try:
                self.audition.start()
            except backend.UserFacingError as error:
                problem = str(error)
        self.player.set_duck(problem is None)
        self.player.play_range()  # loops or stops at the out point (the Loop box)
        fitted = excerpt is not None and excerpt.fitted
        source_time = excerpt.source_time if fitted else (lambda seconds: offset + seconds)
        self.now_playing.begin(suggestion.path, source_time, in_point, out_point)
        if problem is not None:
            self.show_message(f"Playing the clip without music: {problem}")
        elif excerpt is not None and excerpt.fitted:
            self.show_message(f"Auditioning {suggestion.title}, fitted: {excerpt.description}")
        else:
            self.show_message(
                f"Auditioning {suggestion.title} from {suggestion.offset:.1f} s (no beats known)"
            )

    def stop_audition(self) -> None:
        self.pending_audition = None
        self.audition_request = None
        self.audition.stop()
        self.now_playing.end()
        self.player.set_duck(False)
        self.player.end_range()  # paused, parked at the in point

    # -- excerpts: what a drag carries and an audition plays ---------------------------------------
    def excerpt_request(self, suggestion: Suggestion) -> ExcerptRequest:
        """The suggestion's part as long as the clip (out - in), or its own length for a prompt-only
        search."""
        length = self.player.out_point - self.player.in_point if self.player.path is not None else 0.0
        return ExcerptRequest(
            suggestion.path, suggestion.title, suggestion.offset, length or suggestion.length
        )

    def prepare_excerpt(self, row: int) -> None:
        """Render a selected or hovered row's excerpt in the background, so its drag starts at once."""
        if 0 <= row < self.results_model.rowCount():
            self.excerpts.prepare(self.excerpt_request(self.results_model.suggestion(row)))

    def start_drag(self, row: int, whole_file: bool) -> None:
        """From the results view's startDrag: drag the excerpt now when it is rendered; otherwise render it
        (busy cursor) and start the drag when it is ready, if the button is still held."""
        suggestion = self.results_model.suggestion(row)
        if whole_file:
            self.show_message(f"Dragging the whole file {Path(suggestion.path).name}")
            self.results.exec_drag(file_mime_data([suggestion.path]), Path(suggestion.path).name)
            return
        request = self.excerpt_request(suggestion)
        excerpt = self.excerpts.prepare(request, immediately=True)
        if excerpt is not None:
            self._drag_excerpt(excerpt)
            return
        if self.pending_drag is None:
            QGuiApplication.setOverrideCursor(Qt.BusyCursor)
        self.pending_drag = request
        self.show_message(f"Fitting {suggestion.title} to the clip: keep the button down, the drag follows…")

    def _drag_excerpt(self, excerpt: Excerpt) -> None:
        kind = "fitted" if excerpt.fitted else "no beats known, cut"
        self.show_message(
            f"Dragging {excerpt.path.name} ({kind}: {excerpt.description}; {WHOLE_FILE_KEY}+drag: the whole file)"
        )
        self.results.exec_drag(file_mime_data([str(excerpt.path)]), excerpt.path.name)

    def _end_pending_drag(self) -> None:
        self.pending_drag = None
        QGuiApplication.restoreOverrideCursor()

    def _excerpt_ready(self, request: ExcerptRequest, excerpt: Excerpt) -> None:
        if self.pending_drag == request:
            self._end_pending_drag()
            if QGuiApplication.mouseButtons() & Qt.LeftButton:
                self._drag_excerpt(excerpt)
            else:
                self.show_message(f"{excerpt.path.name} is ready: drag the suggestion again")
        if self.pending_audition is not None and self.pending_audition[0] == request:
            _, suggestion = self.pending_audition
            self.pending_audition = None
            self._load_audition(suggestion, request, excerpt)

    def _excerpt_failed(self, request: ExcerptRequest, message: str) -> None:
        if self.pending_drag == request:
            self._end_pending_drag()
            self.show_message(f"No excerpt: {message} ({WHOLE_FILE_KEY}+drag carries the whole file)")
        if self.pending_audition is not None and self.pending_audition[0] == request:
            _, suggestion = self.pending_audition
            self.pending_audition = None
            log.info("audition not fitted: %s", message)
            self._load_audition(suggestion, request, None)

    # -- results actions --------------------------------------------------------------------------
    def copy_path(self) -> None:
        suggestion = self.selected_suggestion()
        if suggestion:
            QGuiApplication.clipboard().setText(suggestion.path)
            self.show_message(f"Copied {suggestion.path}")

    def reveal_in_folder(self) -> None:
        suggestion = self.selected_suggestion()
        if suggestion is None:
            return
        if not os.path.exists(suggestion.path):
            self.show_message(f"{suggestion.path}: the file has vanished; rescan its folder")
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(suggestion.path).parent)))

    def mark_used(self) -> workers.Task | None:
        """The "Used in this edit" action: the selected suggestion, from its best part, against the clip's
        in/out (the track only without a clip), as a used mark in the catalog (desktop/marks.py)."""
        from viml.desktop.marks import describe, record_mark

        suggestion = self.selected_suggestion()
        if suggestion is None:
            self.show_message("Pick a suggestion to mark it used in this edit")
            return None
        player = self.player
        clip = (str(player.path), player.in_point, player.out_point) if player.path else None
        catalog_file = backend.catalog_path(self.settings.catalog)
        task = workers.Task(lambda token: record_mark(catalog_file, suggestion.path, suggestion.offset, clip))
        task.signals.result.connect(lambda mark: self._marked_used(describe(mark)))
        task.signals.error.connect(lambda message: self.show_message(f"Not marked used: {message}"))
        return workers.start(self.keep(task), self.pool)

    def _marked_used(self, message: str) -> None:
        self.show_message(message)
        if self.search_bar.not_used.isChecked():
            self.request_query(immediately=True)  # the track just marked leaves the list now

    @staticmethod
    def export_filters() -> str:
        """The save dialog's filters: every format catalog/timeline_formats.py writes, OTIO first."""
        from viml.catalog.timeline_formats import FORMATS

        return ";;".join(f"{fmt.label} (*{fmt.suffix})" for fmt in FORMATS.values())

    def choose_export_path(self) -> None:
        if self.selected_suggestion() is None or self.player.path is None:
            self.show_message("Open a clip and pick a suggestion to export a timeline")
            return
        from viml.catalog.timeline_formats import FORMATS

        path, chosen = QFileDialog.getSaveFileName(
            self, "Export timeline", "viml-timeline.otio", self.export_filters()
        )
        if not path:
            return
        if not Path(path).suffix:  # no extension typed: the chosen filter's
            suffix = next((s for s, f in FORMATS.items() if chosen.startswith(f.label)), ".otio")
            path += suffix
        self.export_timeline(path)

    def keep(self, task: workers.Task) -> workers.Task:
        """Hold a task until it has finished: an unreferenced task's signals can be collected before its
        result reaches the GUI thread (the export message was lost so)."""
        self.kept_tasks.add(task)
        task.signals.finished.connect(lambda: self.kept_tasks.discard(task))
        return task

    def export_timeline(self, path: str) -> workers.Task | None:
        suggestion = self.selected_suggestion()
        if suggestion is None or self.player.path is None:
            return None
        video, in_point, out_point = str(self.player.path), self.player.in_point, self.player.out_point
        task = workers.Task(
            lambda token: backend.export_timeline(
                path, video, in_point, out_point, suggestion.path, suggestion.offset
            )
        )
        task.signals.result.connect(self._exported)
        task.signals.error.connect(self._export_failed)
        self.show_message(f"Writing {path}…")
        return workers.start(self.keep(task), self.pool)

    def _exported(self, written: str) -> None:
        self.show_message(f"Timeline written to {written}")

    def _export_failed(self, message: str) -> None:
        self.show_message(f"Timeline not written: {message}")

    # -- dialogs ----------------------------------------------------------------------------------
    def open_batch_tag(self) -> None:
        from viml.desktop.dialogs import BatchTagDialog

        dialog = BatchTagDialog(self.settings, self)
        dialog.show()
        return dialog

    def open_learn(self):
        from viml.desktop.learn_dialog import LearnDialog

        dialog = LearnDialog(self.settings, self)
        dialog.learned.connect(self._learned)
        dialog.show()
        return dialog

    def _learned(self, made_default: bool) -> None:
        """A learned bundle that became the default is the one the app ranks with from now on (a bundle
        chosen in the settings gives way: the learning started from it)."""
        if made_default:
            self.settings.bundle = None  # follow the default bundle
            self.open_bundle()
            self.request_query()

    def open_settings(self) -> None:
        from viml.desktop.dialogs import SettingsDialog

        if SettingsDialog(self.settings, self).exec():
            self.use_audio_device()
            self.library.set_folders(self.settings.music_folders)
            self.refresh_library()
            self.open_bundle()
            self.request_query()

    # -- drag and drop in -------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        # A suggestion (or track) dragged in this app and let go over the window is not a drop onto the
        # library; OwnDragGuard refuses it before any child widget sees it, this is the window's own check.
        if event.mimeData().hasUrls() and event.source() is None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if event.source() is not None:
            event.ignore()
            return
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        self.open_dropped(paths)
        event.acceptProposedAction()

    def open_dropped(self, paths: list[str]) -> None:
        """Videos open as the clip, timelines open the clip picker, music files/folders join the library.

        Decided from names and stats only (nothing is read here, on the GUI thread); the app's own
        excerpts and files already under a music folder add nothing, and devices, pipes and /proc files
        are refused unopened."""
        from viml.engine.media.extensions import AUDIO_EXTENSIONS

        music_folders: list[str] = []
        for path in paths:
            suffix = Path(path).suffix.lower()
            problem = backend.special_file_problem(path, folder_ok=True)
            if problem is not None:
                self.show_message(problem)
            elif self.excerpts.cache.contains(path):
                self.show_message(
                    f"{Path(path).name}: an excerpt this app rendered, not added to the library"
                )
            elif os.path.isdir(path) or suffix in AUDIO_EXTENSIONS:
                folder = path if os.path.isdir(path) else str(Path(path).parent)
                holder = self.library_folder_of(folder)
                if holder is not None:
                    self.show_message(f"{Path(path).name} is already in the library (in {holder})")
                else:
                    music_folders.append(folder)
            elif suffix in VIDEO_EXTENSIONS:
                self.open_video(path)
            elif suffix in TIMELINE_EXTENSIONS:
                self.open_timeline(path)
            else:
                self.show_message(f"{path}: not a video, timeline, music file or folder")
        if music_folders:
            self.add_music_folders(sorted(set(music_folders)))

    def library_folder_of(self, path: str) -> str | None:
        """The music folder `path` is (or lies under), if any."""
        path = os.path.abspath(path)
        for folder in self.settings.music_folders:
            if path == folder or path.startswith(folder.rstrip(os.sep) + os.sep):
                return folder
        return None

    # -- idle / closing ---------------------------------------------------------------------------
    def is_idle(self) -> bool:
        """No background work pending (screenshots and tests wait for this)."""
        return (
            self.pool.activeThreadCount() == 0
            and not self.query.running
            and self.scan_task is None
            and self.library_task is None
            and self.bundle_task is None
            and not self.excerpts.busy
            and not self.kept_tasks
        )

    def closeEvent(self, event) -> None:
        if self.pending_drag is not None:
            self._end_pending_drag()
        self.stop_audition()
        self.cancel_scan()
        self.query.cancel()
        for dialog in self.findChildren(QDialog):  # batch tag and learning stop their child processes
            dialog.close()
        super().closeEvent(event)
