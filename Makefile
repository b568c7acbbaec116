# Kite Desk: the two commands are `make run` and `make test`.
# Both install what is missing first (scripts/setup.sh) and reuse build output.

CARGO ?= cargo
SETUP_STAMP := target/.setup-done

.PHONY: run test lint build bench fuzz setup clean ui ui-test

# Re-run setup only when the script changes.
$(SETUP_STAMP): scripts/setup.sh
	@bash scripts/setup.sh
	@mkdir -p target && touch $@

setup: $(SETUP_STAMP)

# The web UI: npm ci when node_modules is missing or older than the lock
# file, then vite build into ui/dist, which the daemon embeds at compile
# time (crates/daemon/build.rs). Rebuilt only when a UI source changes, so
# the daemon is not recompiled for nothing.
UI_DEPS := ui/node_modules/.package-lock.json
UI_SOURCES := $(shell find ui/src ui/public -type f 2>/dev/null) ui/index.html ui/vite.config.ts ui/package-lock.json
$(UI_DEPS): ui/package-lock.json ui/package.json
	cd ui && npm ci --no-audit --no-fund
	@touch $@
ui/dist/index.html: $(UI_DEPS) $(UI_SOURCES)
	cd ui && npm run build

# smee-client (npm), which a relay test runs against the relay's
# smee-compatible channel (crates/relay/tests/it/smee.rs).
SMEE_DEPS := bench/tools/smee/node_modules/.package-lock.json
$(SMEE_DEPS): bench/tools/smee/package-lock.json bench/tools/smee/package.json
	cd bench/tools/smee && npm ci --no-audit --no-fund
	@touch $@

## ui: build the web UI (ui/dist).
ui: $(SETUP_STAMP) ui/dist/index.html

## ui-test: the UI's unit tests (vitest) and end-to-end tests (Chromium against kitedesk serve).
ui-test: ui
	$(CARGO) build --workspace --bins
	cd ui && npm test
	cd ui && npm run e2e

## run: build (release) and start Kite Desk on the embedded default configuration:
## the desktop app when a display exists, else the daemon alone.
run: $(SETUP_STAMP) ui
	$(CARGO) build --release --workspace --bins
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then ./target/release/kitedesk-app; else ./target/release/kitedesk serve; fi

## test: lint, then every test, including the ones that start real components.
test: $(SETUP_STAMP) ui lint $(SMEE_DEPS)
	KITEDESK_REQUIRE_SMEE=1 $(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc
	$(MAKE) ui-test

## lint: formatting and clippy with warnings as errors.
lint: $(SETUP_STAMP)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build: $(SETUP_STAMP) ui
	$(CARGO) build --workspace --bins

## bench: the benchmarks in bench/ (not part of test); results in bench/RESULTS.md.
bench: $(SETUP_STAMP)
	bash bench/run-all.sh

## fuzz: run every fuzz target (not part of test); see fuzz/README.md.
fuzz: $(SETUP_STAMP)
	bash fuzz/run-all.sh

clean:
	$(CARGO) clean
