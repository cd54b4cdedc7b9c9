"""What runs inside the sandbox, next to student code: the verdict's subject
(subject, with wire and instruments, sent into its sandbox as source text) and the graded
kernel's in-kernel probe (tamper, with the package's __init__ the only grader files the kernel
sees). Everything here is untrusted once a student's cell has run: it answers with data only
(tensors, numbers, strings, structure descriptions), never pickles or code. It imports nothing
of the grader but its own room and the package's __init__; no other room's code may be
needed here, and the sandbox must never mount anything else of the package.
"""
