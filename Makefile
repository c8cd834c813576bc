# Two commands for a fresh machine (see README):
#   make demo   - set everything up, then run the main job end to end on the embedded demo world
#   make test   - set everything up, then run the test suite
# Caches (virtual environment, downloaded wheels) live in VIML_CACHE, outside the checkout; the data
# (models, demo, catalog) in VIML_HOME, the platform's user data folder by default.

VIML_CACHE ?= $(HOME)/.cache/viml
VENV ?= $(VIML_CACHE)/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.viml-installed

.PHONY: demo test install lint

demo: install
	$(WHEELS) $(VENV)/bin/viml demo

# The tests convert the pretrained weights from the wheels `install` downloaded, wherever VIML_CACHE is.
WHEELS := VIML_MUSICNN_WHEEL=$(VIML_CACHE)/wheels/musicnn-0.1.0-py3-none-any.whl \
	VIML_BEATNET_WHEEL=$(VIML_CACHE)/wheels/BeatNet-1.1.3-py3-none-any.whl

test: install
	$(WHEELS) QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -x --durations=15

lint: install
	$(VENV)/bin/ruff check .

install: $(STAMP)

$(STAMP): pyproject.toml setup.py scripts/system-deps.sh
	bash scripts/system-deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	# tinysoundfont declares pyaudio (needs PortAudio headers to build) but offline rendering never uses it.
	$(PY) -m pip install -q --no-deps tinysoundfont
	$(PY) -m pip install -q -e '.[train,test,bench,cluster]'
	# The musicnn wheel carries the pretrained taggers; its metadata pins numpy<1.17 and TensorFlow, so it is
	# never installed, only downloaded: `viml convert-musicnn` reads the checkpoints straight from the zip.
	test -f $(VIML_CACHE)/wheels/musicnn-0.1.0-py3-none-any.whl || \
		$(PY) -m pip download -q --no-deps musicnn==0.1.0 -d $(VIML_CACHE)/wheels
	# Likewise BeatNet's wheel (CC BY 4.0 beat/downbeat CRNN weights; it requires madmom and pins numba):
	# only downloaded, `viml convert-beatnet` reads the state dicts from the zip.
	test -f $(VIML_CACHE)/wheels/BeatNet-1.1.3-py3-none-any.whl || \
		$(PY) -m pip download -q --no-deps BeatNet==1.1.3 -d $(VIML_CACHE)/wheels
	touch $(STAMP)
