"""Engine jobs: the on-disk store (SQLite), the scheduler that runs them, and the child-process worker.

A job's record lives in ``<state dir>/jobs.sqlite``; its files (params, log, default outputs) in
``<state dir>/jobs/<id>/``. Generation runs inside the engine with warm models; fine-tuning and export run
in child processes, so cancel can kill the whole process tree and free the device.
"""
