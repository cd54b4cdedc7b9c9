"""The sandbox itself, run by the grader (trusted) around every process that
executes student code: the bubblewrap spec and the kernel manager (sandbox), per-submission
uids (uids), resource limits (limits), output caps (output_caps) and the disk monitor
(disk_monitor). It may import the bridge's course layout, the records' flag names and the
judging room's hidden-test stripping; it never imports the inside room's code to run it (the
inside room's files are mounted by name) and nothing of commands.
"""
