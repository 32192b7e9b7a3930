"""`make bench`: the worker against a raw aiokafka loop and a naive Faust pipeline, on one broker.

python -m bench --orders 100000     # the full run (about five minutes on 2 cores)
python -m bench --smoke             # 2,000 orders and a short latency run (what `make test` runs)

Every variant runs as its own process, on the same orders, against the bench's own embedded broker
(`EMBEDDED_BROKER`: noida or tansu) or the cluster `KAFKA_BOOTSTRAP_SERVERS` names; figures go to
stdout as one table and to `bench/results/latest.json`.
"""
