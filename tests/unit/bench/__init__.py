"""Unit tests of the benchmarks' pure parts.

bench/ is not a distribution: the modules are loaded with
``importlib.import_module("bench.<name>")`` (tests/unit/test_dependencies.py
counts the first name of every absolute ``import`` as one).
"""
