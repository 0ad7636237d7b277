"""Batch tests, the LLM judge and the model arena: suites -> runner -> judge -> scores.

Faces call `promstack.evals.engine` (import suites, run tests, judge a run, evaluate a prompt)
and `promstack.evals.arena`; every model call goes through the gateway (`promstack.gateway`).
"""
