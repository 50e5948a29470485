# `make demo` and `make test` each set up a fresh machine themselves.
# TORCH_SPEC picks the torch build: plain `torch` (default; CUDA wheels on Linux) or e.g. torch==2.13.0.
# EXTRAS: pip extras to install (dev,eval adds PESQ/STOI/MCD/DNSMOS/WER to tests); the demo installs DEMO_EXTRAS.
TORCH_SPEC ?= torch
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
DEMO_ARGS ?=
EXTRAS ?= dev
DEMO_EXTRAS ?= dev,eval
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install demo test test-slow compare-priors pictures speech-engines enhance-demo

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

# The demo trains on sentences spoken by espeak-ng / flite (Debian packages; installed here when running as root with
# apt, else the formant corpus stands in) and scores PESQ/STOI/WER with the eval extra (about 1.5 min to install).
demo: speech-engines
	$(MAKE) --no-print-directory install EXTRAS=$(DEMO_EXTRAS)
	$(PY) recipes/ljspeech.py --preset quick $(DEMO_ARGS)

speech-engines:
	@command -v espeak-ng >/dev/null || command -v flite >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing espeak-ng and flite (apt)"; \
	    apt-get install -y -qq espeak-ng flite >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq espeak-ng flite >/dev/null 2>&1; } || \
	    echo "could not install espeak-ng/flite: the formant corpus stands in"; \
	  else echo "no espeak-ng/flite (sudo apt install espeak-ng flite): the formant corpus stands in"; fi; }

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# The same quick run with each noise prior (about 9 minutes each), then one benchmark of the three on the
# same test clips: README's prior comparison table comes from runs/compare-priors/benchmark.md.
compare-priors: install
	for prior in white priorgrad specgrad; do \
		$(PY) recipes/ljspeech.py --preset quick --prior $$prior --run-dir runs/quick-$$prior --benchmark-nfe "" || exit 1; \
	done
	$(PY) -m wavegrad.cli benchmark runs/quick-white runs/quick-priorgrad runs/quick-specgrad --data-dir data/quickstart \
		--labels white,priorgrad,specgrad --nfe 50,6,3 --samplers ddpm,ddim,dpmpp-2m,pc,searched --clips 3 \
		--out-dir runs/compare-priors

# README's pictures (docs/): the demo's vocoder run, and a quick MNIST-format run on generated stand-in digits
# (the real MNIST files work the same: IMAGE_DATA=data/mnist).
IMAGE_DATA ?= data/mnist-standin
pictures: install
	test -d runs/quick/checkpoints || $(PY) recipes/ljspeech.py --preset quick
	test -d $(IMAGE_DATA) || $(PY) data_prep/images.py generate mnist $(IMAGE_DATA)
	test -d runs/mnist-quick/checkpoints || $(PY) recipes/mnist.py --quick --data-dir $(IMAGE_DATA) --run-dir runs/mnist-quick
	$(PY) recipes/readme_pictures.py --vocoder runs/quick --images runs/mnist-quick --image-data $(IMAGE_DATA) --out docs

# Speech enhancement on the same core (CDiffuSE): the spoken corpus as clean speech, generated noise of five kinds to
# train on and two held-out kinds (pink, babble) to score on; 6 minutes of training, then the benchmark
# (runs/enhance-quick/benchmark/benchmark.html).
enhance-demo: speech-engines
	$(MAKE) --no-print-directory install EXTRAS=$(DEMO_EXTRAS)
	$(PY) data_prep/make_corpus.py --out data/quickstart --real data/real
	test -f data/quickstart/train.txt || $(PY) data_prep/ljspeech.py split data/quickstart
	test -d data/noise/train || $(PY) data_prep/make_noise.py --out data/noise/train --kinds white,brown,hum,engine,clicks
	test -d data/noise/test || $(PY) data_prep/make_noise.py --out data/noise/test --kinds pink,babble --speech-dir data/quickstart
	$(PY) recipes/enhance.py --preset quick --clean-dir data/quickstart --noise-dir data/noise/train \
		--bench-noise-dir data/noise/test --max-minutes 6
