"""The fault and bad-input suite (issue 11): concurrency, kill -9, a misbehaving model, property
tests over every input, and the security edges. `make torture` runs only this package; `make
test` runs it with the rest. Every test is bounded in time by its own loop limits and timeouts."""
