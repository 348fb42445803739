"""Slicer's own test runner: ``slicer_add_python_unittest`` runs ``slicer.testing.runUnitTest(path, "MedSynth")``,
which is ``unittest.TestLoader().loadTestsFromName("MedSynth")`` and then every discovered ``test*`` method.

Runs under the project's Python (real MRML) and under Python 3.9 (``test_python39.py``; bare harness, no MRML).
"""

from __future__ import annotations

import inspect
import io
import unittest


def test_slicer_discovery_yields_tests_that_take_no_arguments(medsynth):
    suite = unittest.TestLoader().loadTestsFromName("MedSynth")
    tests = {test.id().rsplit(".", 1)[-1]: test for test in _flatten(suite)}
    assert {"test_RoundTrip", "test_LossPlot", "test_GenerateThroughEngine"} <= set(tests)
    for name, test in tests.items():
        parameters = inspect.signature(getattr(test, name)).parameters
        assert not parameters, f"{name} takes {list(parameters)}: Slicer's runner calls it without arguments"


def test_slicer_discovery_runs_green_on_real_mrml(medsynth):
    import harness  # not at module level: slicer-core's package imports every module of a folder named slicer

    if not harness.HAS_MRML:
        return  # Python 3.9: slicer-core cannot be installed, the MRML tests run under the project's Python
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=2).run(unittest.TestLoader().loadTestsFromName("MedSynth"))
    assert result.wasSuccessful(), stream.getvalue()
    assert result.testsRun == 3
    assert [test.id().rsplit(".", 1)[-1] for test, _ in result.skipped] == ["test_GenerateThroughEngine"]  # no engine set


def test_reader_study_module_is_discovered_and_runs(reader_study_module):
    import harness

    tests = [test.id().rsplit(".", 1)[-1] for test in _flatten(unittest.TestLoader().loadTestsFromName("MedSynthReaderStudy"))]
    assert tests == ["test_NoStudyOpen"]
    if harness.HAS_MRML:
        result = unittest.TextTestRunner(stream=io.StringIO()).run(unittest.TestLoader().loadTestsFromName("MedSynthReaderStudy"))
        assert result.wasSuccessful() and result.testsRun == 1


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item
