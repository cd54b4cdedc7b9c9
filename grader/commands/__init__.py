"""The instructor's commands, `python -m grader ...`: the argument parser
(cli), autograde, release, check, export (the class's CSVs and feedback after hand grading),
publish (with owned_tree, environment) and the feedback page assets (feedback_assets). The top
of the house: it may import every trusted room; no room imports it.
"""
