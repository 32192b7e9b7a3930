"""Settlement: each payout that reaches a final topic is recorded once in the ledger.

`ledger` (the Settlement record, the `settle` rule, the table and its totals), `stage` (the stage).
"""

from __future__ import annotations

from worker.settlement.ledger import Ledger, register
from worker.settlement.stage import settlement

__all__ = ["Ledger", "register", "settlement"]
