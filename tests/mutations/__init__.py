"""The mutation check: named breaks of the platform's rules, each with the tests that must
catch it (``catalog.py``), applied one at a time to a scratch copy (``runner.py``,
run by ``scripts/mutate``)."""
