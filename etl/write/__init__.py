"""The write stage: workers claim the shards of a plan and write them as WebDataset tars.

In pipeline order:

- `queue`: the `shards` table (queue.sql): claims, leases, the manifest commit, status.
- `tar`: the sample format: members, tar layout, the DALI `.idx`.
- `worker`: one worker: the claim-and-write loop, its lease keeper, signals and time limits.
- `launch`: `write_plan`, running the workers as local processes or MPI ranks, and the shard index.
"""
