"""Course labs: the chapter notebooks as labs a class can hand out and grade.

``rlaif-lab lab list`` shows the labs (:mod:`.registry`), ``lab start NN`` writes the student's
copy of notebook NN (solutions replaced by stubs, :mod:`.notebook`), and ``lab check NN`` grades
it against hidden tests (:mod:`.checks`) in a clean Jupyter kernel (:mod:`.grader`,
:mod:`.kernel`). The format is described in docs/teaching.md.
"""

from .kernel import selfcheck
from .registry import LABS, get_lab

__all__ = ["LABS", "get_lab", "selfcheck"]
