# stackyard: every pipeline step is a target here and a 'stackyard' command.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV ?= .venv
STACKYARD := $(VENV)/bin/stackyard
RELEASE ?= 2025.1
PROJECT ?= keystone
PROJECTS ?= $(PROJECT) python-openstackclient
export PIP_CONFIG_FILE := /dev/null

# Debian packages stackyard itself needs (build tools for wheels and debs come
# from each release's bindep.txt via 'stackyard bindep --install'); chromium is for
# the headless screenshot test of the Buildbot web UI.
DEB_DEPS := build-essential python3-dev python3-venv python3-pip git ca-certificates \
	debhelper dpkg-dev fakeroot lintian dh-virtualenv reprepro gnupg mmdebstrap apt-utils systemd systemd-container \
	docker.io docker-registry skopeo apache2-utils openssl curl chromium

.PHONY: deps demo demo-cli demo-summary test test-charts test-unit test-integration test-e2e bench clean lint up down buildbot-up buildbot-down verify

deps: $(VENV)/.deps-stamp
	$(STACKYARD) bindep --install --release all

$(VENV)/.deps-stamp: pyproject.toml
	@if ! dpkg-query -W -f='$${db:Status-Status}\n' $(DEB_DEPS) 2>/dev/null | grep -qvx installed \
	    && [ "$$(dpkg-query -W -f='$${db:Status-Status}\n' $(DEB_DEPS) 2>/dev/null | wc -l)" -eq "$(words $(DEB_DEPS))" ]; then \
	  echo "Debian packages: already installed"; \
	else \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_DEPS); \
	fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --isolated --disable-pip-version-check -q --upgrade 'pip>=25.1,<25.3'
	$(VENV)/bin/python -m pip install --isolated --disable-pip-version-check -q -e '.[test,buildbot]'
	touch $@

# The main job on the embedded default, as Buildbot builds: 'make up' (dockerd, the registry, the master and
# its local worker), then the release's wheels builder forced with the committed pins; it triggers each
# project's builder (lock, wheels, deb, lintian, smoke test, publish, image) and then promote (verify,
# promote). A line per build and step; the web UI keeps them. Everything lands under ./var
demo: deps
	$(STACKYARD) check
	$(MAKE) up
	$(VENV)/bin/python -m builders.ctl demo --config stackyard.toml --release $(RELEASE) $(PROJECTS)
	$(STACKYARD) puppet-data --release $(RELEASE)
	$(STACKYARD) apt-config --release $(RELEASE)
	$(STACKYARD) helm-values --release $(RELEASE)
	@$(MAKE) --no-print-directory demo-summary

# The same job without Buildbot: each step a stackyard command in this shell
demo-cli: deps
	$(STACKYARD) check
	$(STACKYARD) lock --release $(RELEASE) $(PROJECTS)
	$(STACKYARD) wheels --release $(RELEASE) $(PROJECTS)
	$(STACKYARD) wheels-deb --release $(RELEASE)
	$(STACKYARD) deb --release $(RELEASE) $(PROJECTS)
	$(STACKYARD) publish --release $(RELEASE) $(PROJECTS)
	$(STACKYARD) verify --release $(RELEASE) $(PROJECTS)
	$(STACKYARD) promote --release $(RELEASE) $(PROJECTS)
	$(STACKYARD) puppet-data --release $(RELEASE)
	$(STACKYARD) apt-config --release $(RELEASE)
	$(MAKE) up
	$(STACKYARD) image --release $(RELEASE) $(PROJECTS) --push
	$(STACKYARD) helm-values --release $(RELEASE)
	@$(MAKE) --no-print-directory demo-summary

demo-summary:
	@echo
	@echo "wheelhouse:  $$(ls -d $(CURDIR)/var/wheelhouse/$(RELEASE)/bookworm-*)"
	@echo "its index:   file://$$(ls -d $(CURDIR)/var/wheelhouse/$(RELEASE)/bookworm-*)/simple"
	@echo "wheels deb:  $$(ls var/debs/$(RELEASE)/openstack-wheels-*.deb)"
	@echo "venv debs:   $$(ls var/debs/$(RELEASE)/venv-*.deb)"
	@echo "apt repo:    $(CURDIR)/var/repo (key: var/repo/stackyard-archive-keyring.gpg)"
	@echo "images:      $$($(VENV)/bin/python -c 'import json,sys; print(*(json.load(open(f))["repository"] + ":" + json.load(open(f))["dated_tag"] for f in sys.argv[1:]))' var/images/$(RELEASE)/*.json)"
	@echo "helm values: $$(ls var/helm/$(RELEASE)/*.yaml)"
	@echo "logs:        var/logs/$(RELEASE)/"
	@echo "buildbot:    http://127.0.0.1:8010/ (user admin, password in var/buildbot/secrets/user-admin); make down stops it all"

# The embedded default on loopback: 'up' starts dockerd, the registry (TLS,
# htpasswd), the Buildbot master and its local worker; 'down' stops them all.
up: $(VENV)/.deps-stamp
	$(STACKYARD) services up
	$(MAKE) buildbot-up

down: buildbot-down
	@if [ -x $(STACKYARD) ]; then $(STACKYARD) chart-verify --clean; $(STACKYARD) services down; $(STACKYARD) verify --clean; fi

# A control plane from the release's staging packages (every project verify knows
# unless VERIFY_PROJECTS names some) answers the scenario; promote requires it.
VERIFY_PROJECTS ?=
verify: deps
	$(STACKYARD) verify --release $(RELEASE) $(VERIFY_PROJECTS)

# Buildbot master (var/buildbot, SQLite) and the local worker; web UI on
# http://127.0.0.1:8010/ (user admin, password in var/buildbot/secrets/user-admin)
buildbot-up: $(VENV)/.deps-stamp
	$(VENV)/bin/python -m builders.ctl up --config stackyard.toml

buildbot-down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m builders.ctl down --config stackyard.toml; fi

# pytest exits 5 when it collected no test: that is a failure here.
PYTEST = rc=0; $(VENV)/bin/python -m pytest -ra --durations=15 $(1) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests in $(1)" >&2; exit 1; fi; exit $$rc

test: deps
	$(call PYTEST,tests/unit tests/integration tests/e2e -m "not charts")

# keystone, glance, placement, neutron, nova and cinder under openstack-helm's own scripts (make test runs all but cinder)
test-charts: deps
	$(call PYTEST,tests/e2e/test_chart_control_plane.py -m charts)

test-unit: $(VENV)/.deps-stamp
	$(call PYTEST,tests/unit --cov=stackyard --cov=builders --cov-report=term --cov-fail-under=80)

test-integration: deps
	$(call PYTEST,tests/integration)

test-e2e: deps
	$(call PYTEST,tests/e2e)

bench: deps
	$(VENV)/bin/python bench/wheels
	$(VENV)/bin/python bench/deb
	$(VENV)/bin/python bench/image
	$(VENV)/bin/python bench/lock
	$(VENV)/bin/python bench/verify
	$(VENV)/bin/python bench/pipeline

lint: $(VENV)/.deps-stamp
	$(VENV)/bin/ruff check stackyard builders tests bench/wheels bench/deb bench/image bench/lock bench/verify bench/pipeline master.cfg

clean:
	rm -rf var
