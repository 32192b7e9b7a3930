"""streamline: a marketplace payout pipeline on Kafka, built on Faust.

Read the flow from `worker/flow/`; the app is assembled in `worker/main.py`.
"""
