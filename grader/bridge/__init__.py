"""The nbgrader bridge: the steps that drive nbgrader's Python API in a child
process (nbgrader_steps), the nbgrader configuration (nbgrader_config), the gradebook
(gradebook), hand grades kept across regrades (manual), the course directory's layout, the one
place that spells a path in DIR (course.CourseLayout), and the one reader of nbgrader cell
roles (cell_roles), and the Submission value that commands.autograde's steps pass along
(submission), and the hidden tests taken out of the test cells before any kernel runs them
(hidden_tests). It may import isolation (to sandbox nbgrader's children) and grader.files;
not records, integrity or commands.
"""
