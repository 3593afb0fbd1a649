# Quick start: `make demo` and `make test`. Each target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RT_SOURCES := $(wildcard optimus_control/rt/src/*.c optimus_control/rt/src/*.h)
RT_STAMP := $(VENV)/.rt-stamp

.PHONY: setup demo factory-demo hil-demo pick-demo episodes test test-fast bench lint urdf clean

setup: $(STAMP) $(RT_STAMP)

$(STAMP): setup.py setup.cfg package.xml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The C extension is rebuilt in place whenever its sources change.
$(RT_STAMP): $(STAMP) $(RT_SOURCES)
	$(PY) setup.py --quiet build_ext --inplace
	touch $@

# The main job: the factory sorting demo through the launcher (sim, controller, perception, planner as
# ROS 2 processes): progress on the terminal, a report under runs/<timestamp>/, exit status 0 only when
# every box is in its bin and the robot never fell; a wrong file or a dead process is reported by its message.
# MODE=realtime runs the sim on the wall clock (the mode hardware and HIL run in).
MODE ?= lockstep
demo: setup
	$(PY) -m optimus_control.apps.demo --mode $(MODE)

factory-demo: demo

# Hardware in the loop: the controller in hardware mode (CAN driver, SLCAN, MIT frames) drives the simulated
# robot only through the rig's emulated motors, with perception and the planner running a pick-and-place job.
HIL_SCENE ?= sorting_cell_two_boxes
HIL_JOB ?= sort_two_boxes
hil-demo: setup
	$(PY) -m optimus_control.apps.demo --mode hil --scene $(HIL_SCENE) --job $(HIL_JOB)

# One pick-and-place of a 1.5 kg box (balance, pick, lift, hold, put back), in process, lockstep sim.
pick-demo: setup
	$(PY) -m optimus_control.apps.pick_demo

# The factory job in one process without ROS, for seeded evaluation: `make episodes SEEDS="0 1 2" WORKERS=2`
# prints one line per seed and a summary scored by ground truth.
SEEDS ?= 0
WORKERS ?= 1
episodes: setup
	$(PY) -m optimus_control.apps.episode --seeds $(SEEDS) --workers $(WORKERS)

# Tests that start processes or depend on timing (markers in setup.cfg) run one at a time after the others,
# which share the cores (pytest-xdist, one test file per worker so module fixtures run once); exit status 5
# (no test in a group) counts as success.
SERIAL := ros or launcher or realtime
PYTEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile -m "not ($(SERIAL))" test || [ $$? -eq 5 ]
	$(PY) -m pytest -q -p no:cacheprovider -m "$(SERIAL)" test || [ $$? -eq 5 ]

# The inner loop: unit tests only (no processes, no physics episodes), under two minutes.
test-fast: setup
	$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile -m "not ($(SERIAL) or sim)" test

bench: setup
	$(PY) -m benchmarks

lint: setup
	$(VENV)/bin/ruff check optimus_control test benchmarks tools

urdf: setup
	$(PY) tools/make_urdf.py

clean:
	rm -rf $(VENV) build *.egg-info optimus_control/rt/_rtcore*.so
