# The README's two commands are `make bench` and `make test`; both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
JOBS ?= 2

.PHONY: setup bench test test-cpp test-cpp-asan test-cpp-tsan test-py test-corpus fuzz fuzz-ci fuzz-build fuzz-run lint clean

setup:
	bash scripts/setup.sh

## Default benchmark on generated data (quick preset): results/ with report.html
bench: setup
	$(VENV)/bin/loaderbench run $(ARGS)

## All tests: C++ (ctest, also under ASan+UBSan and TSan), a bounded fuzz run, Python (pytest) and the malformed-input corpus
test: setup test-cpp test-cpp-asan test-cpp-tsan fuzz-ci test-py test-corpus

test-cpp:
	cmake -S . -B build/cpp -DLOADERBENCH_BUILD_TESTS=ON -DLOADERBENCH_BUILD_PYTHON=OFF -DCMAKE_BUILD_TYPE=Release
	cmake --build build/cpp -j $(JOBS)
	ctest --test-dir build/cpp --output-on-failure

test-cpp-asan:
	cmake -S . -B build/cpp-asan -DLOADERBENCH_BUILD_TESTS=ON -DLOADERBENCH_BUILD_PYTHON=OFF \
	  -DLOADERBENCH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build/cpp-asan -j $(JOBS)
	ctest --test-dir build/cpp-asan --output-on-failure

# GCC 12's libtsan aborts at start-up ("FATAL: ThreadSanitizer: unexpected memory mapping") on kernels that
# randomise mmap addresses with more bits than its fixed memory layout allows (vm.mmap_rnd_bits = 32 on recent
# kernels). Where a TSan binary cannot even list its tests, they run under `setarch -R` (address randomisation
# off for the test processes only); it is not used otherwise, as some container profiles refuse that personality.
# Debian's GoogleTest is not TSan-instrumented; it reports no false positives here, so there is no suppressions
# file (add one, a comment per entry, only for a proven false positive).
TSAN_OPTIONS_RUN := halt_on_error=1 second_deadlock_stack=1
test-cpp-tsan:
	cmake -S . -B build/cpp-tsan -DLOADERBENCH_BUILD_TESTS=ON -DLOADERBENCH_BUILD_PYTHON=OFF \
	  -DLOADERBENCH_TSAN=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build/cpp-tsan -j $(JOBS)
	@if TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" build/cpp-tsan/loaderbench_core_tests --gtest_list_tests >/dev/null 2>&1; \
	then wrap=""; else wrap="setarch $$(uname -m) -R"; echo "test-cpp-tsan: running under $$wrap"; fi; \
	TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" $$wrap ctest --test-dir build/cpp-tsan --output-on-failure

## Fuzzing (libFuzzer, clang): `make fuzz` runs each target FUZZ_SECONDS; `make fuzz-ci` is the bounded run
## that `make test` includes. Crashes, leaks, timeouts and OOMs fail the run; reproducers land in build/fuzz/crashes.
FUZZ_SECONDS ?= 600
FUZZ_CI_SECONDS ?= 50
FUZZ_DIR := build/fuzz
FUZZ_TARGETS := ome_import_fuzzer sparse_coo_fuzzer
# -rss_limit_mb also caps a single allocation (libFuzzer's -malloc_limit_mb defaults to it).
FUZZ_FLAGS := -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1

fuzz-build:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DLOADERBENCH_FUZZ=ON -DLOADERBENCH_BUILD_TESTS=OFF \
	  -DLOADERBENCH_BUILD_PYTHON=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_DIR) -j $(JOBS)
	$(FUZZ_DIR)/loaderbench_fuzz_seeds $(FUZZ_DIR)/seeds

fuzz: fuzz-build
	@$(MAKE) --no-print-directory fuzz-run FUZZ_TIME=$(FUZZ_SECONDS)

fuzz-ci: fuzz-build
	@$(MAKE) --no-print-directory fuzz-run FUZZ_TIME=$(FUZZ_CI_SECONDS)

# Each target grows its corpus in build/fuzz/corpus/<target> from the generated seeds; the summary line gives the
# executions, the full log is build/fuzz/<target>.log; a reproducer reruns with `build/fuzz/<target> <file>`.
fuzz-run:
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crashes; \
	  start=$$(date +%s); rc=0; \
	  UBSAN_OPTIONS=print_stacktrace=1 $(FUZZ_DIR)/$$t $(FUZZ_FLAGS) -max_total_time=$(FUZZ_TIME) \
	    -artifact_prefix=$(FUZZ_DIR)/crashes/$$t- $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t \
	    > $(FUZZ_DIR)/$$t.log 2>&1 || rc=$$?; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/$$t.log | tail -n 1); \
	  cov=$$(grep -oE 'cov: [0-9]+' $(FUZZ_DIR)/$$t.log | tail -n 1); \
	  echo "fuzz: $$t: $${runs:-?} executions in $$(( $$(date +%s) - start )) s ($${cov:-cov: ?}), exit $$rc"; \
	  if [ $$rc -ne 0 ]; then \
	    grep -m 1 -E 'FINDING|runtime error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' $(FUZZ_DIR)/$$t.log; \
	    grep -E '^ +#[0-9]+ .* in .*/cpp/(src|fuzz)/' $(FUZZ_DIR)/$$t.log | head -n 8; \
	    grep -E 'Test unit written to' $(FUZZ_DIR)/$$t.log; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed"; exit 1; fi

test-py:
	$(PY) -m pytest -q

## Malformed inputs (tests/corpus): each one must fail cleanly or load the right data; build/corpus.json
test-corpus:
	$(PY) tests/corpus/run_corpus.py --jobs 2 --json build/corpus.json

lint:
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf build results
