"""Read side: folds the ledger's events into views (state as known at a position,
quota positions, replays). Depends on ``ledger``'s public events; ``ledger`` never
imports it."""
