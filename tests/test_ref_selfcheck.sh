#!/usr/bin/env bash
# The PyTorch reference itself against the values quoted in the model math (rotary example, gelu_new).
cd "$(dirname "$0")/.." && exec /usr/bin/python3 tests/ref/test_ref_selfcheck.py
