"""The hidden tests of the labs, one module per lab (``labNN.py``).

Each module defines ``EXERCISES`` (an :class:`~rlaif_lab.labs.spec.ExerciseList` filled by the
:func:`~rlaif_lab.labs.spec.exercise` decorator) and ``MUTATION``, the deliberate bug the test
suite plants in one solution. A check receives the namespace the student's cell ran in and
raises :class:`~rlaif_lab.labs.spec.Fail` with a message the student can act on.
"""
