"""Reference implementations for the rlllm-course notebooks.

Each submodule holds one idea: pure functions of arrays or tensors first, the
training loops on top, plots apart (``rlllm_course.plots``).
"""

__version__ = "0.1.0"
