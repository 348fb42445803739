"""Engine jobs: the kinds (``kinds/``, one module each), the on-disk store, the scheduler and the worker process.

A job's record lives in ``<state dir>/jobs.sqlite``; its files (params, log, default outputs) in
``<state dir>/jobs/<id>/``. What a job does, what it takes and which lane it waits in is its kind's
(``spec.JobKind``); ``runner`` queues and runs jobs, ``supervise`` runs worker processes (cancel kills the
whole tree and frees the device), ``report`` writes their progress, ``schema`` holds the shared param types.
"""
