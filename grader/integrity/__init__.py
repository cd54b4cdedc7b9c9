"""Review aids and guards on answers and pages: answer-cell similarity
(similarity, similarity_html, similarity_syntax), the static tamper scan (tamper_scan),
sanitising student HTML before any page shows it (sanitize), the graded definitions
(graded) and the published-tree answer scan (answer_scan). It may import the bridge, the
records' flags, the inside room's tamper for its list of sensitive names, and grader.files.
"""
