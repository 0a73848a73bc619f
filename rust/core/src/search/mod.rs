//! Test-time search over reasoning steps: the `SearchTree` arena (PUCT/UCT selection, backup,
//! virtual loss, beam pruning, best-first frontier) and answer voting.
//!
//! Papers: Snell et al. (compute-optimal test-time search: best-of-N, beam, lookahead), AlphaMath
//! (MCTS with a value model, step-level beam search), Tree-PLV (best-first search, preference pairs),
//! Fu et al. (complexity-based voting). Selection of one leaf costs O(depth · branching); backup
//! O(depth); top-k pruning O(n log n); voting O(n) expected.

mod tree;
mod vote;

pub use tree::{
    BestBy, ChildData, Policy, SearchTree, SelectParams, MAX_CHILDREN, MAX_NODES_LIMIT, NO_PARENT,
};
pub use vote::{vote, Winner};

#[cfg(test)]
mod tests;
