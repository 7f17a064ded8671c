# The two commands of the README: `make demo` and `make test`. Both first
# install the Debian packages the build needs (when run as root), then build
# with Meson + Ninja in build/.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# Seconds per fuzzer for `make fuzz`; empty: each fuzzer's CI budget.
FUZZ_TIME  ?=
DEPS       := meson ninja-build pkg-config libjson-c-dev libcmocka-dev pciutils

.PHONY: all deps build demo test test-asan test-valgrind test-interop fuzz bench \
        clean

all: build

deps:
	@missing=""; \
	for p in $(DEPS) $(EXTRA_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing build dependencies; run: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD)
	ninja -C $(BUILD)

demo: build
	./samples/demo.sh $(BUILD)

test: build
	./test/run.sh $(BUILD)

# The same suite built with AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	@[ -f $(ASAN_BUILD)/build.ninja ] || \
	  meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ./test/run.sh $(ASAN_BUILD)

# The unit and functional suites under valgrind's memcheck: uninitialised
# bytes handed to a system call (a reply carrying stale memory to the
# peer), invalid accesses, definite leaks. ASan does not see the first.
# test/valgrind.supp lists what the tests do on purpose.
VALGRIND := valgrind --error-exitcode=99 -q --leak-check=full \
            --errors-for-leak-kinds=definite \
            --suppressions=$(CURDIR)/test/valgrind.supp
test-valgrind: build
	@$(MAKE) --no-print-directory deps EXTRA_DEPS=valgrind
	./test/run.sh $(BUILD) --suite unit --suite functional \
	  --no-suite no-valgrind --wrapper "$(VALGRIND)" \
	  --timeout-multiplier 10

# The fuzzers (test/fuzz, docs/reliability.md), built with clang, libFuzzer,
# ASan and UBSan, each run for a bounded time; fails on any finding.
fuzz:
	@$(MAKE) --no-print-directory deps EXTRA_DEPS="clang libclang-rt-dev"
	@[ -f $(FUZZ_BUILD)/build.ninja ] || \
	  CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false \
	    -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(FUZZ_BUILD)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ./test/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TIME)

# Our samples under QEMU's vfio-user client with a Linux guest (test/interop):
# the first run downloads QEMU and a guest kernel into $VFU_INTEROP_DIR
# (default /var/tmp/vfu-interop), later runs reuse them.
test-interop: build
	./test/interop/setup.sh
	./test/run.sh $(BUILD) --suite interop

bench: build
	$(BUILD)/bench/vfu-bench
	$(BUILD)/bench/vfu-bench-migration
	$(BUILD)/bench/vfu-dma-bench
	$(BUILD)/bench/vfu-bench-doorbell
	$(BUILD)/bench/vfu-bench-nvme
	$(BUILD)/bench/vfu-bench-scale

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
