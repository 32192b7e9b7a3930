"""The topic contracts other teams build against: a JSON Schema per topic and one AsyncAPI document.

Generated from the Records, the codec's rules (`worker.wire`, the decoders) and the flow of topics
(`worker.contracts.flow`), never written by hand: `make contracts` writes them to `docs/contracts/`,
and a test fails when the committed files differ from what this package generates. Nothing here
creates a Faust app or talks to a broker.
"""
