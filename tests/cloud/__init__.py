"""A local stand-in for the Modal deployment: container processes, PgBouncer, the Clay simulator.

`control` is Modal's function-call queue, `container` the code each container process runs,
`processes` starts and watches those processes, `harness` runs a batch through them all and
`figures` gathers what a run measured. `tests/cloud/test_cloud_standin.py` and
`bench/cloud.py` drive it.
"""
