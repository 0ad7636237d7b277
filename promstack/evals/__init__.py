"""Batch tests, the LLM judge and the model arena: suites -> runner -> judge -> scores.

Faces call `promstack.evals.engine` (import suites, run tests, judge a run, evaluate a prompt)
and `promstack.evals.arena`; every model call goes through the gateway (`promstack.gateway`).
Inside, imports go one way, the facade on top: engine -> arena -> plans -> catalog -> suites,
judge; the runner and the arena share `pool`, and `ratings` (the arena's math) imports nothing
of the project. docs/evals.md says which module holds what.
"""
