# Top-level driver: `make` builds build/kiln and libkiln; `make check` runs every test.
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
BUILD ?= build
CMAKE ?= cmake

.PHONY: all check demo conformance unit golden fuzz sanitize clean

all:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@$(CMAKE) --build $(BUILD) -j$(JOBS)

unit: all
	@bash tests/run_unit.sh $(BUILD)

conformance: all
	@$(BUILD)/kiln_conformance --root ../shared/onnx-tests --baseline tests/conformance-baseline.txt --failures $(BUILD)/conformance-failures.txt

golden: all
	@bash tests/golden/check.sh $(BUILD)/kiln

fuzz:
	@bash tests/fuzz/run.sh 60

sanitize:
	@bash tests/run_sanitized.sh

demo: all
	@bash models/demo.sh $(BUILD)/kiln

check: all
	@bash tests/check.sh

clean:
	rm -rf build build-*
