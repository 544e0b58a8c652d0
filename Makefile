# PACSshare: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install ohif run migrate demo test pytest lint format bench worker beat relay receiver messages clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ohif

# OHIF's prebuilt viewer from the npm registry (@ohif/app, pinned and checked in
# tools/ohif/install.py) into var/ohif/, served at /ohif/; not committed.
ohif:
	$(PYTHON) tools/ohif/install.py var/ohif

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --no-input

demo: migrate
	$(BIN)/python manage.py seed_demo

run: demo ohif
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

worker: $(STAMP)
	$(BIN)/celery -A pacsshare worker --loglevel=INFO

# The relays (outbox, bring-ins, PACS transfers) on a schedule (needs REDIS_URL,
# beside `make worker`).
beat: $(STAMP)
	mkdir -p var
	$(BIN)/celery -A pacsshare beat --loglevel=INFO --schedule=var/celerybeat-schedule

# The DICOM receiver (C-ECHO, C-STORE) on DICOM_RECEIVER_HOST:DICOM_RECEIVER_PORT
# (default 127.0.0.1:11112, AE title PACSSHARE).
receiver: migrate
	$(BIN)/python manage.py dicom_listen

# One relay sweep by hand; without REDIS_URL it runs what it finds in-process.
relay: $(STAMP)
	$(BIN)/python manage.py relay_notifications
	$(BIN)/python manage.py relay_dicom_tasks

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

pytest: $(STAMP) ohif
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

messages: $(STAMP)
	$(BIN)/python manage.py makemessages --all --ignore=.venv --ignore=static/vendor \
		--ignore=tests --ignore=bench --ignore=var --ignore=screenshots --ignore=node_modules
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf var staticfiles
