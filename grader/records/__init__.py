"""What a run leaves for people: the per-submission flags (flags), the CSVs and
run record (report), LMS exports and collection (lms_export, collect, roster), progress lines
(progress), shards (shard) and the resume records (resume). It may import the bridge,
grader.files, isolation's limits (the run report's key) and integrity (flags runs the tamper
scan); never inside. `grader export`, which rewrites these records, is a command
(commands.export).
"""
