"""Worker plumbing, written once for every task (imports, segment computes):

- `locks`: the namespaced 64-bit advisory-lock keys and the lease a run holds;
- `transient`: which failures are retried, and arq's `Retry` for the next try;
- `enqueue`: jobs go to Redis only after their transaction commits;
- `context`: the typed `ctx` arq hands a task;
- `queue`: heartbeats, waiting jobs (fairness) and the revival of lost jobs;
- `pruning`: the maintenance steps that delete old rows a batch at a time.
"""
