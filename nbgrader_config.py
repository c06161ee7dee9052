# nbgrader configuration of the course: solutions/ is the source, notebooks/ the release.
# Run nbgrader commands from this folder (see the README's instructor section).
c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "rlllm-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"

# An unfilled exercise says which function to fill in (rlllm_course/stubs.py).
from rlllm_course.stubs import PREPROCESSORS  # noqa: E402

c.GenerateAssignment.preprocessors = PREPROCESSORS

# A full (non-FAST) run of a module trains for a few minutes; no single cell takes ten.
c.ExecutePreprocessor.timeout = 600
