"""The pipeline's stages, one module per edge of the flow:

storefront (timer) ──> orders ──> orders_to_payouts ──> payouts ──> screening ─┬─> payouts-approved
                                      │                               │         └─> payouts-review
                                      └──────── bad input ────────────┴──> dead-letters

payouts-review ──> review (a person decides) ──> payouts-approved | payouts-rejected
                   escalation (timer): still pending after REVIEW_SLA ──> payouts-review-escalated
payouts-approved ──> seller_history (what the reviewer compares a held payout with)
"""
