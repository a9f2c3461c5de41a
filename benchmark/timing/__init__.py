"""Timing: frames/s of methods, the speed half of the CI gate, deep training speed, harness figures."""
