"""The pipeline's stages, one module per edge of the flow:

storefront (timer) ──> orders ──> orders_to_payouts ──> payouts ──> screening ─┬─> payouts-approved
                                      │                               │         └─> payouts-review
                                      └──────── bad input ────────────┴──> dead-letters
"""
