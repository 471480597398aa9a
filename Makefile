# Entry points for humans and CI. Every target installs what it needs first (make setup) and is
# safe to run again: a second run reuses the venv and lab images the first one built.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
CACHE := $(ROOT)/.cache
ENV := source $(ROOT)/tests/lab/env.sh &&
PYTHON ?= python3
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
SCENARIO ?= $(SCENARIOS)
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum requirements-dev.txt | cut -c1-12)

.PHONY: help setup apt venv images artifacts lint yamllint ansible-lint sanity unit compat molecule build test lab lab-down clean

help:
	@echo "make lab        bring up the lab (molecule/site), apply site.yml, run the attack drill and the audit"
	@echo "make lab-down   remove the lab"
	@echo "make test       the whole test suite (lint, sanity, unit, build, every Molecule scenario)"
	@echo "make molecule SCENARIO=name   one Molecule scenario (default: all: $(SCENARIOS))"

setup: apt venv images artifacts

apt:
	@missing=$$(grep -v '^#' tests/lab/apt-packages.txt | while read -r p; do \
	  [ -z "$$p" ] || dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements-dev.txt
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@# ansible-test bootstraps pip in its sanity venvs from a cached script before it tries to download one.
	pipver=$$(grep -oP "pip='\K[0-9.]+" $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py); \
	  mkdir -p ~/.ansible/test/cache && cp tests/sanity/get_pip_offline.py ~/.ansible/test/cache/get_pip_$${pipver//./_}.py
	rm -f $(VENV)/.installed-* && touch $@

images: apt
	$(ENV) tests/lab/build-image.sh bookworm
	$(ENV) tests/lab/build-image.sh trixie

# What the lab serves instead of the internet: oauth2-proxy built from its Go module and packed as its
# release is, and the identity provider's wheels. Both cached under .cache.
artifacts:
	tests/lab/build-oauth2-proxy.sh v7.15.6
	tests/lab/fetch-oidc-provider.sh

lint: yamllint ansible-lint

yamllint: venv
	$(ENV) yamllint --strict .

ansible-lint: venv
	$(ENV) ansible-lint --strict

# ansible-test wants the collection at .../ansible_collections/NS/NAME, outside any git checkout (inside one
# it asks git for the file list, and .cache is ignored): test a copy of the tracked tree there.
SANITY_ROOT := /var/tmp/jfh-sanity-$(shell echo $(ROOT) | sha256sum | cut -c1-8)
sanity: venv
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)/ansible_collections/homelab/jellyfin_hardening
	git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C $(SANITY_ROOT)/ansible_collections/homelab/jellyfin_hardening -xf -
	$(ENV) cd $(SANITY_ROOT)/ansible_collections/homelab/jellyfin_hardening && \
	  ansible-test sanity --venv --python 3.11 --color no

unit: venv
	$(ENV) python -m pytest -q tests/unit

# The older ansible-core releases of the supported range (.venv has the newest): unit tests and sanity.
compat: venv
	tests/compat.sh

build: venv
	$(ENV) tests/build-smoke.sh

molecule: setup
	@for s in $(SCENARIO); do echo "=== molecule scenario $$s"; $(ENV) molecule test -s $$s; done

test: setup
	tests/suite.sh

# The lab is the site scenario's containers: molecule brings them up and applies site.yml (converge), the drill
# attacks them, the audit (the scenario's side-effect playbook) reports on them. Run again, it reuses what is up.
lab: setup
	$(ENV) molecule converge -s site
	$(ENV) python tests/lab/drill.py
	$(ENV) molecule side-effect -s site
	@echo "Lab up. Reports: $(CACHE)/lab/audit/; friend's WireGuard config: $(CACHE)/lab/wireguard-clients/; make lab-down removes it all."

lab-down: venv
	$(ENV) molecule destroy -s site

clean: lab-down
	rm -rf $(CACHE) $(VENV)
