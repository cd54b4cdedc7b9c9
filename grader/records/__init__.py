"""What a run leaves for people: the per-submission flags (flags), the CSVs and
run record (report), LMS exports and collection (lms_export, collect, roster), progress lines
(progress), shards (shard), the resume records (resume) and `grader export` (export). It may
import the bridge, grader.files and integrity (flags runs the tamper scan); export also
imports commands.autograde to regenerate feedback. Never inside or isolation.
"""
