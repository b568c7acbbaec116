# Kite Desk: the two commands are `make run` and `make test`.
# Both install what is missing first (scripts/setup.sh) and reuse build output.

CARGO ?= cargo
SETUP_STAMP := target/.setup-done

.PHONY: run test lint build bench fuzz setup clean

# Re-run setup only when the script changes.
$(SETUP_STAMP): scripts/setup.sh
	@bash scripts/setup.sh
	@mkdir -p target && touch $@

setup: $(SETUP_STAMP)

## run: build (release) and start Kite Desk on the embedded default configuration:
## the desktop app when a display exists, else the daemon alone.
run: $(SETUP_STAMP)
	$(CARGO) build --release --workspace --bins
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then ./target/release/kitedesk-app; else ./target/release/kitedesk serve; fi

## test: lint, then every test, including the ones that start real components.
test: $(SETUP_STAMP) lint
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

## lint: formatting and clippy with warnings as errors.
lint: $(SETUP_STAMP)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build: $(SETUP_STAMP)
	$(CARGO) build --workspace --bins

## bench: the benchmarks in bench/ (not part of test); results in bench/RESULTS.md.
bench: $(SETUP_STAMP)
	bash bench/run-all.sh

## fuzz: run every fuzz target (not part of test); see fuzz/README.md.
fuzz: $(SETUP_STAMP)
	bash fuzz/run-all.sh

clean:
	$(CARGO) clean
