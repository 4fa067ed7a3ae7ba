# The README's two commands are `make bench` and `make test`; both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
JOBS ?= 2

.PHONY: setup bench test test-cpp test-cpp-asan test-py lint clean

setup:
	bash scripts/setup.sh

## Default benchmark on generated data (quick preset): results/ with report.html
bench: setup
	$(VENV)/bin/loaderbench run $(ARGS)

## All tests: C++ (ctest, also under ASan+UBSan) and Python (pytest)
test: setup test-cpp test-cpp-asan test-py

test-cpp:
	cmake -S . -B build/cpp -DLOADERBENCH_BUILD_TESTS=ON -DLOADERBENCH_BUILD_PYTHON=OFF -DCMAKE_BUILD_TYPE=Release
	cmake --build build/cpp -j $(JOBS)
	ctest --test-dir build/cpp --output-on-failure

test-cpp-asan:
	cmake -S . -B build/cpp-asan -DLOADERBENCH_BUILD_TESTS=ON -DLOADERBENCH_BUILD_PYTHON=OFF \
	  -DLOADERBENCH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build/cpp-asan -j $(JOBS)
	ctest --test-dir build/cpp-asan --output-on-failure

test-py:
	$(PY) -m pytest -q

lint:
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf build results
