"""Writing overlaps computing with bounded memory: with a writer slower than the model, the real generate pipeline
keeps computing while cases are written, and never holds more than the writer's bound of cases (plus the one
being made), whatever ``-n`` is."""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref

import medsynth_engine.generate as generate_module
import pytest
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.setwriter import SetWriter

pytestmark = pytest.mark.slow  # renders a small set


class CountingWriter(SetWriter):
    """The real writer on a slow disk, counting the cases it holds (queued or being written) and those alive anywhere."""

    alive = most_held = most_alive = 0
    lock = threading.Lock()

    def add(self, case, seed, index, extra=None):
        cls = type(self)
        with cls.lock:
            cls.alive += 1
            cls.most_alive = max(cls.most_alive, cls.alive)
        weakref.finalize(case, cls._freed)
        case_id = super().add(case, seed, index, extra)
        cls.most_held = max(cls.most_held, sum(not future.done() for future in self._pending))
        return case_id

    @classmethod
    def _freed(cls):
        with cls.lock:
            cls.alive -= 1

    def _write_case(self, entry, case):
        time.sleep(0.5)  # a slow disk
        super()._write_case(entry, case)


def test_a_slow_writer_bounds_the_cases_in_memory_and_computing_goes_on(tmp_path, monkeypatch, registry):
    plugin = registry.generator("phantom")
    rendered = plugin.generate(seed=1, channels=("t1", "seg"), shape=(16,) * 3, spacing=(9.0,) * 3, tumour=True, device="cpu")

    def instant(**kwargs):  # a model far faster than the disk: a fresh copy of one real case each time
        return dataclasses.replace(rendered, arrays={k: v.copy() for k, v in rendered.arrays.items()})

    monkeypatch.setattr(plugin, "generate", instant)
    monkeypatch.setattr(generate_module, "SetWriter", CountingWriter)
    request = GenerateRequest(model="phantom", n=8, seed=3, out=tmp_path / "set", channels="t1,seg", shape=(16,) * 3,
                              spacing=(9.0,) * 3, device="cpu", workers=1)
    out = generate_set(request, registry)
    assert len(list(out.glob("*/*_t1.nii.gz"))) == 8
    bound = 1 + 1  # workers + 1
    assert CountingWriter.most_held == bound  # the model went on while the writer was busy, up to the bound and no further
    assert CountingWriter.most_alive <= bound + 1  # no case beyond the bound (and the one being made) stayed in memory
    assert CountingWriter.alive == 0
