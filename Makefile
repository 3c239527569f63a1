# netreload — the README's two commands are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
PYTEST := tests/tools/pytest_lane.sh $(PY) -m pytest -p no:cacheprovider

.PHONY: all venv nm-ifcfg debs debs-demo debs-functional debs-vm debs-bench lint test test-fast test-unit test-functional test-vm soak demo bench clean

all: test

$(VENV)/.installed: setup.cfg setup.py pyproject.toml tests/tools/install_debian_packages.sh
	# dbus-python (the nm extra) is built by pip: its headers first
	tests/tools/install_debian_packages.sh venv
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# setuptools notes that an editable install imports from the checkout,
	# which is what this virtualenv is for: that one notice is not shown.
	# The compat mode puts the checkout on sys.path with a plain .pth line:
	# the default mode's import finder costs every process it starts ~10 ms
	# (the CLI's whole start is measured: benchmarks/README.md, round 3). An
	# installed (non-editable) package has neither. Where setuptools no
	# longer offers compat, the default mode.
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q \
		-e '.[test,ovs,events,nm]' --config-settings editable_mode=compat \
		|| $(PY) -m pip install -q -e '.[test,ovs,events,nm]'
	touch $@

venv: $(VENV)/.installed

# Each target installs the Debian packages it needs, no more: the demo does
# not pull qemu and a distribution kernel, which only the VM lane boots.
debs: debs-functional debs-vm
debs-demo debs-functional debs-vm debs-bench: debs-%:
	tests/tools/install_debian_packages.sh $*

# NetworkManager 1.42 with the ifcfg-rh plugin (Debian's is built without):
# built from Debian's source once per machine, outside the checkout, for the
# ifcfg configurator's functional tests (a few minutes the first time).
nm-ifcfg: debs-functional
	tests/tools/build_nm_ifcfg.sh

lint: venv
	$(VENV)/bin/ruff check .

test-unit: venv
	$(PYTEST) tests/unit -q

test-functional: venv debs-functional nm-ifcfg
	$(PYTEST) tests/functional -q

test-vm: venv debs-vm
	tests/vm/run_vm_lane.sh

# Quick local loop: everything but the VM lane.
test-fast: lint test-unit test-functional

test: lint test-unit test-functional test-vm

# The crash, fuzz, hostile-input and load tests with their big counts (about
# 30-60 min): five kill sweeps, 10x the fuzzed requests, longer abuse and load,
# the nm kill sweep over a 20-network change (the gating run sweeps 4).
SOAK_TESTS := tests/functional/test_crash_recovery.py tests/functional/test_fuzz_setup_networks.py \
	tests/functional/test_wire_hostile.py tests/functional/test_superd_hostile.py \
	tests/functional/test_load.py tests/functional/test_ifcfg_crash.py \
	tests/functional/test_live_netinfo.py tests/functional/test_nm_superd.py
soak: venv debs-functional nm-ifcfg
	NETRELOAD_SOAK=1 $(PYTEST) -s $(SOAK_TESTS)

# The main job end to end in throw-away network namespaces (needs root; see
# demo/__main__.py). It removes everything it created, also on failure or Ctrl-C.
demo: venv debs-demo
	$(SUDO) $(PY) -m demo

# The benchmark suite (needs root; see benchmarks/README.md): tables on stdout,
# JSON in benchmarks/results/. BENCH_ARGS=--quick for N = 10, 100 only.
bench: venv debs-bench
	$(SUDO) $(PY) -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
