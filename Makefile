# Two entry points for people: `make certify` and `make test`. Both install
# everything they need from scratch into .venv/ and .tools/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ALLURE_VERSION := 2.46.1
ALLURE := .tools/node_modules/.bin/allure
BENCH  ?= benches/emulated.yaml
CHROMIUM := /usr/bin/chromium
SER2NET := /usr/sbin/ser2net
LABGRID := .tools/labgrid/bin/labgrid-client
# the key that seals `make certify`'s result set; a lab points this at its own
SIGNING_KEY ?= .tools/keys/hil-signing-key.pem
export ALLURE_NO_ANALYTICS := true
export HYPOTHESIS_PROFILE ?= ci

.PHONY: install certify test lint typecheck unit benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The Allure command line comes from npm and runs on the machine's Java.
$(ALLURE):
	@command -v java >/dev/null || (apt-get update -q && apt-get install -y -q openjdk-17-jre-headless)
	@command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q nodejs npm)
	npm install --prefix .tools --no-audit --no-fund --loglevel=error allure-commandline@$(ALLURE_VERSION)

# Debian's Chromium renders the reports in the browser tests (never a downloaded browser).
$(CHROMIUM):
	apt-get update -q && apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core

# Debian's ser2net and iproute2: the remote-transport tests make bench hosts in network
# namespaces and put ser2net (RFC 2217) in front of a device's serial line.
$(SER2NET):
	apt-get update -q && apt-get install -y -q --no-install-recommends ser2net iproute2

# labgrid in its own venv: it replaces pyserial's serial module with its fork, which
# hil's own venv must not get; hil drives the coordinator with this labgrid-client.
$(LABGRID):
	$(PYTHON) -m venv .tools/labgrid
	.tools/labgrid/bin/python -m pip install -q 'labgrid>=26,<27'

# order-only: a newer venv (pyproject changed) must not make an existing key "out of date"
$(SIGNING_KEY): | $(STAMP)
	$(BIN)/hil report keygen -o $@

install: $(STAMP) $(ALLURE) $(CHROMIUM) $(SER2NET) $(LABGRID)

certify: install $(SIGNING_KEY)
	$(BIN)/hil certify --bench $(BENCH) --reports reports --allure $(ALLURE) --key $(SIGNING_KEY)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Two workers (the machine has two cores); a test file stays on one worker, so a module's
# shared fixture (a whole certification run) is made once.
unit: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test: lint typecheck unit

# Every figure of the README's Performance table. The peer kit (OpenHTF, pytest,
# allure-pytest, HardPy, cantools.tester, bare python-can) lives beside the repo in
# ../shared/peer-bench and runs hil's peer scripts in its own passes (its venv under
# /tmp/peerbench); the stand-alone scripts each measure their bare-library baseline.
PEER_KIT ?= ../shared/peer-bench
PEER_PASSES ?= 3
benchmark: install
	cd $(PEER_KIT) && HIL_PY=$(CURDIR)/$(BIN)/python \
	  HIL_BENCH="$(addprefix $(CURDIR)/benchmarks/peer/,hil_plan.py hil_cli.py hil_can.py)" \
	  ./run.sh $(PEER_PASSES)
	$(BIN)/python benchmarks/can_stream.py
	$(BIN)/python benchmarks/can_soak.py
	$(BIN)/python benchmarks/serial_rtt.py
	$(BIN)/python benchmarks/visa_rtt.py
	$(BIN)/python benchmarks/plan_load.py
	$(BIN)/python benchmarks/scale_home.py

clean:
	rm -rf reports/allure-results reports/allure-report reports/hil-results reports/canaries \
	  reports/certificate reports/browser reports/manifest.json reports/summary.txt
