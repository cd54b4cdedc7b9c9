"""The trusted verdict: the judge (verdict) that starts a sandboxed subject,
sends it described arguments (described), talks to it through proxies (proxy), and scores
every test cell in the grader's own process with the hidden checks (grader.checks, which
stays at the top of the package because the solutions' hidden-test cells import it by that
name); the bridge's hidden_tests splits each test cell for it. It may import the inside
room's wire and instruments (to speak the subject's protocol and send its source), isolation,
the bridge and the records' flags; nothing here is mounted in a sandbox.
"""
