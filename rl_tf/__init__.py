"""TensorFlow/Keras side of rlaif-lab: policies, policy gradient, MDP tools, AI-feedback fusion.

Importing this package selects the Keras TensorFlow backend and quiets TensorFlow's C++ logs
(before TensorFlow is loaded). It never imports torch (the import rule of DESIGN.md).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # quieter, and bit-reproducible on CPU
