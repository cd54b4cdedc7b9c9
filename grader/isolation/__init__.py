"""The sandbox itself, run by the grader (trusted) around every process that
executes student code: the bubblewrap spec and the kernel manager (sandbox), per-submission
uids (uids), resource limits (limits), output caps (output_caps) and the disk monitor
(disk_monitor). It may import grader.files and the bridge's course policy (which course
packages answers may see); it never imports the inside room's code to run it (the inside room's
files are mounted by name), nor judging, records, integrity or commands. How nbgrader is
pointed at it (hidden tests first, SandboxedExecute for Execute) is the bridge's
(nbgrader_steps.configure_execution).
"""
