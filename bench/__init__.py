"""`make bench`: the worker against a raw aiokafka loop and a naive Faust pipeline, on one broker.

python -m bench --orders 100000     # the full run (about five minutes on 2 cores)
python -m bench --smoke             # 2,000 orders and a short latency run (what `make test` runs)

Every variant runs as its own process against the bench's own embedded broker, on the same orders;
figures go to stdout as one table and to `bench/results/latest.json`.
"""
