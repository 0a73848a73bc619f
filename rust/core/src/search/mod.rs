//! Test-time search over reasoning steps: the `SearchTree` arena (PUCT/UCT selection, backup,
//! virtual loss, beam pruning, best-first frontier, voting).
