"""The wire between the Torch LM and the TF policy, and nothing above it.

``protocol`` (the NumPy messages), ``npz`` and ``frames`` (their codecs), ``env`` (the LM as a
Gymnasium environment over an abstract backend), ``child`` (a backend in a child process),
``numerics`` (shared NumPy maths), ``metrics`` (every logged name), ``config`` and ``files``
(framework-free config checks and atomic files). Imports NumPy and Gymnasium only: never torch,
TensorFlow, ``lm_torch``, ``rl_tf`` or the application (DESIGN.md's layers, checked by a test).
"""
