//! The `SearchTree` arena: a forest of search trees (one root per problem) in structure-of-arrays
//! form, with batched expansion, PUCT/UCT selection of distinct leaves under virtual loss, backup,
//! grouped top-k pruning, a per-root best-first frontier, and checkpointing through serde.
//!
//! Hot state (what selection and backup touch) is 32 bytes per node:
//! `parent u32 | child_start u32 | child_count u16 | pending u16 | prior f32 | visits u32 |
//! value_sum f64 | key u32` where `key` holds a 31-bit seeded structural tie-break hash and the
//! terminal flag in its top bit. Cold state (24 bytes: depth u32, root ordinal u32, payload i64,
//! text end offset u64, plus the step text bytes in one shared buffer) lives in separate arrays that
//! the inner loops never read. Children of a node are a contiguous id range.
//!
//! Costs: selecting one leaf O(depth · branching); backup O(depth); expansion O(children);
//! top-k O(n log n) for the grouping sort plus O(n) selection per group.
//!
//! Determinism: ties are broken by the structural key (a hash of the seed and the child-index path
//! from the root), then by node id. Node ids of one root keep their relative order however the
//! roots' operations interleave, so a problem's tree is identical whether it is searched alone or in
//! a batch with others. (The number of leaves selected per call is a search setting: with virtual
//! loss it changes which leaves are visited, by design.)

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// Parent id of a root.
pub const NO_PARENT: u32 = u32::MAX;
const TERMINAL_BIT: u32 = 1 << 31;
const KEY_MASK: u32 = TERMINAL_BIT - 1;

/// Child-scoring rule of [`SearchTree::select`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// AlphaZero PUCT: `Q + (c·sqrt(N_parent))·P/(1 + N_child)` (evaluated in that order), where
    /// N counts real plus in-flight visits and Q is `fpu` for a child with none.
    Puct,
    /// UCT (Kocsis & Szepesvári): `Q + c·sqrt(ln N_parent / N_child)`; unvisited children first.
    Uct,
}

impl Policy {
    /// Parse `"puct"` or `"uct"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "puct" => Ok(Policy::Puct),
            "uct" => Ok(Policy::Uct),
            other => Err(CoreError::invalid("policy", format!("must be \"puct\" or \"uct\", got {other:?}"))),
        }
    }
}

/// Parameters of one [`SearchTree::select`] call.
#[derive(Clone, Copy, Debug)]
pub struct SelectParams {
    /// Scoring rule.
    pub policy: Policy,
    /// Exploration constant (finite, >= 0).
    pub c: f64,
    /// Value subtracted per in-flight visit: a node with `n` pending leaves below it counts `n` more
    /// visits and `n·virtual_loss` less value sum (finite, >= 0).
    pub virtual_loss: f64,
    /// Q of a child with no (real or virtual) visits: first-play urgency (finite).
    pub fpu: f64,
}

impl Default for SelectParams {
    fn default() -> Self {
        SelectParams { policy: Policy::Puct, c: 1.0, virtual_loss: 1.0, fpu: 0.0 }
    }
}

/// Statistic that [`SearchTree::best_leaf`] descends by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BestBy {
    /// Most visits (ties: higher mean value, then the tie key).
    Visits,
    /// Highest mean value among visited children (ties: more visits, then the tie key).
    Value,
}

impl BestBy {
    /// Parse `"visits"` or `"value"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "visits" => Ok(BestBy::Visits),
            "value" => Ok(BestBy::Value),
            other => Err(CoreError::invalid("by", format!("must be \"visits\" or \"value\", got {other:?}"))),
        }
    }
}

/// One best-first frontier entry; ordered by priority, then lower tie key, then lower node id.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
struct Entry {
    #[serde(with = "inf_as_str")]
    priority: f64,
    key: u32,
    node: u32,
}

impl Entry {
    /// True when `self` should be popped before `other`.
    fn before(&self, other: &Entry) -> bool {
        match self.priority.total_cmp(&other.priority) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => (self.key, self.node) < (other.key, other.node),
        }
    }
}

/// A binary max-heap of entries under [`Entry::before`], stored as a plain `Vec` so that it
/// serializes exactly (pop order is a function of the entry set alone: the order is total).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct Heap(Vec<Entry>);

impl Heap {
    fn push(&mut self, e: Entry) {
        let h = &mut self.0;
        h.push(e);
        let mut i = h.len() - 1;
        while i > 0 {
            let p = (i - 1) / 2;
            if h[i].before(&h[p]) {
                h.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }

    fn pop(&mut self) -> Option<Entry> {
        let h = &mut self.0;
        let n = h.len();
        if n == 0 {
            return None;
        }
        h.swap(0, n - 1);
        let top = h.pop();
        let n = h.len();
        let mut i = 0;
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut best = i;
            if l < n && h[l].before(&h[best]) {
                best = l;
            }
            if r < n && h[r].before(&h[best]) {
                best = r;
            }
            if best == i {
                break;
            }
            h.swap(i, best);
            i = best;
        }
        top
    }
}

/// JSON has no infinities: ±inf priorities are written as the strings "inf" / "-inf".
mod inf_as_str {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_infinite() {
            s.serialize_str(if *x > 0.0 { "inf" } else { "-inf" })
        } else {
            s.serialize_f64(*x)
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(f64),
        Str(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Num(x) => Ok(x),
            Repr::Str(s) if s == "inf" => Ok(f64::INFINITY),
            Repr::Str(s) if s == "-inf" => Ok(f64::NEG_INFINITY),
            Repr::Str(s) => Err(serde::de::Error::custom(format!("invalid priority {s:?}"))),
        }
    }
}

/// SplitMix64 finalizer: the structural tie-break hash.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn child_key(seed: u64, parent_key: u32, index: u32) -> u32 {
    (mix(seed ^ mix(((parent_key as u64) << 32) | index as u64)) as u32) & KEY_MASK
}

fn root_key(seed: u64) -> u32 {
    (mix(seed) as u32) & KEY_MASK
}

/// The error for a node list with a repeat: the first repeat for short lists, else the smallest.
#[cold]
fn duplicate_error(nodes: &[u32]) -> CoreError {
    let dup = if nodes.len() <= 16 {
        (1..nodes.len()).find(|&i| nodes[..i].contains(&nodes[i])).map(|i| nodes[i])
    } else {
        let mut sorted = nodes.to_vec();
        sorted.sort_unstable();
        sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    };
    match dup {
        Some(d) => CoreError::invalid("nodes", format!("node {d} appears twice")),
        None => CoreError::invalid("nodes", "a node appears twice"),
    }
}

/// Map an f64 to a u64 whose unsigned order is the float's total order (NaN excluded upstream).
fn ordered_bits(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn elem_size<T>(_: &[T]) -> usize {
    std::mem::size_of::<T>()
}

/// Optional per-child data given to [`SearchTree::expand`].
#[derive(Clone, Debug, Default)]
pub struct ChildData {
    /// Terminal flag per child (empty: none terminal).
    pub terminal: Vec<bool>,
    /// User payload id per child (empty: -1).
    pub payload: Vec<i64>,
    /// Step text per child (empty: "").
    pub text: Vec<String>,
}

/// Arena of search trees. See the module documentation for layout and determinism.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SearchTree {
    seed: u64,
    max_nodes: u32,
    // hot: 32 bytes per node
    parent: Vec<u32>,
    child_start: Vec<u32>,
    child_count: Vec<u16>,
    pending: Vec<u16>,
    prior: Vec<f32>,
    visits: Vec<u32>,
    value_sum: Vec<f64>,
    key: Vec<u32>,
    // cold
    depth: Vec<u32>,
    root_of: Vec<u32>,
    payload: Vec<i64>,
    /// Step texts concatenated; node i's text is `text_buf[text_end[i-1]..text_end[i]]`.
    text_buf: String,
    text_end: Vec<u64>,
    roots: Vec<u32>,
    frontier: Vec<Heap>,
}

/// Largest `max_nodes` accepted (ids are u32 and `u32::MAX` marks "no parent").
pub const MAX_NODES_LIMIT: u32 = u32::MAX - 1;
/// Most children one node may have.
pub const MAX_CHILDREN: usize = u16::MAX as usize;

impl SearchTree {
    /// An empty forest; add problems with [`SearchTree::add_roots`].
    pub fn new(seed: u64, max_nodes: u64) -> Result<Self> {
        if max_nodes == 0 || max_nodes > MAX_NODES_LIMIT as u64 {
            return Err(CoreError::out_of_range(
                "max_nodes",
                max_nodes,
                format!("must lie in [1, {MAX_NODES_LIMIT}]"),
            ));
        }
        Ok(SearchTree {
            seed,
            max_nodes: max_nodes as u32,
            parent: Vec::new(),
            child_start: Vec::new(),
            child_count: Vec::new(),
            pending: Vec::new(),
            prior: Vec::new(),
            visits: Vec::new(),
            value_sum: Vec::new(),
            key: Vec::new(),
            depth: Vec::new(),
            root_of: Vec::new(),
            payload: Vec::new(),
            text_buf: String::new(),
            text_end: Vec::new(),
            roots: Vec::new(),
            frontier: Vec::new(),
        })
    }

    /// Remove every node and root but keep the allocated memory, so the arena can be reused for the
    /// next batch of problems without allocating (or page-faulting) again.
    pub fn clear(&mut self) {
        self.parent.clear();
        self.child_start.clear();
        self.child_count.clear();
        self.pending.clear();
        self.prior.clear();
        self.visits.clear();
        self.value_sum.clear();
        self.key.clear();
        self.depth.clear();
        self.root_of.clear();
        self.payload.clear();
        self.text_buf.clear();
        self.text_end.clear();
        self.roots.clear();
        self.frontier.clear();
    }

    /// Reserve room for `additional` more nodes (capped at `max_nodes`) so growth does not reallocate.
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        let n = additional.min((self.max_nodes as usize).saturating_sub(self.len()));
        let fail = |_| CoreError::limit("memory", n as u64, "cannot reserve room for that many nodes");
        self.parent.try_reserve(n).map_err(fail)?;
        self.child_start.try_reserve(n).map_err(fail)?;
        self.child_count.try_reserve(n).map_err(fail)?;
        self.pending.try_reserve(n).map_err(fail)?;
        self.prior.try_reserve(n).map_err(fail)?;
        self.visits.try_reserve(n).map_err(fail)?;
        self.value_sum.try_reserve(n).map_err(fail)?;
        self.key.try_reserve(n).map_err(fail)?;
        self.depth.try_reserve(n).map_err(fail)?;
        self.root_of.try_reserve(n).map_err(fail)?;
        self.payload.try_reserve(n).map_err(fail)?;
        self.text_end.try_reserve(n).map_err(fail)?;
        Ok(())
    }

    /// Hot bytes per node (selection/backup state), by construction 32.
    pub fn hot_bytes_per_node(&self) -> usize {
        elem_size(&self.parent)
            + elem_size(&self.child_start)
            + elem_size(&self.child_count)
            + elem_size(&self.pending)
            + elem_size(&self.prior)
            + elem_size(&self.visits)
            + elem_size(&self.value_sum)
            + elem_size(&self.key)
    }

    /// Seed of the tie-break hash.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Node cap.
    pub fn max_nodes(&self) -> u64 {
        self.max_nodes as u64
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// True when the forest has no node.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Root ids in creation order.
    pub fn roots(&self) -> &[u32] {
        &self.roots
    }

    fn check_capacity(&self, extra: usize, what: &str) -> Result<()> {
        let total = self.len() as u64 + extra as u64;
        if total > self.max_nodes as u64 {
            return Err(CoreError::limit(
                "max_nodes",
                self.max_nodes as u64,
                format!("{what} would grow the tree to {total} nodes; raise max_nodes or prune the search"),
            ));
        }
        Ok(())
    }

    fn push_node(&mut self, parent: u32, prior: f32, key: u32, depth: u32, root_ord: u32) {
        self.parent.push(parent);
        self.child_start.push(0);
        self.child_count.push(0);
        self.pending.push(0);
        self.prior.push(prior);
        self.visits.push(0);
        self.value_sum.push(0.0);
        self.key.push(key);
        self.depth.push(depth);
        self.root_of.push(root_ord);
    }

    /// Add `n` roots (one per problem), with optional payloads and texts; returns their ids.
    pub fn add_roots(&mut self, n: usize, payload: &[i64], text: &[String]) -> Result<Vec<u32>> {
        if !payload.is_empty() && payload.len() != n {
            return Err(CoreError::invalid("payload", format!("length {} != n ({n})", payload.len())));
        }
        if !text.is_empty() && text.len() != n {
            return Err(CoreError::invalid("text", format!("length {} != n ({n})", text.len())));
        }
        self.check_capacity(n, "add_roots")?;
        let key = root_key(self.seed);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let id = self.len() as u32;
            let ord = self.roots.len() as u32;
            self.push_node(NO_PARENT, 1.0, key, 0, ord);
            self.payload.push(payload.get(i).copied().unwrap_or(-1));
            self.push_text(text.get(i).map_or("", |s| s.as_str()));
            self.roots.push(id);
            self.frontier.push(Heap::default());
            out.push(id);
        }
        Ok(out)
    }

    fn check_node(&self, arg: &str, node: i64) -> Result<u32> {
        if node < 0 || node as u64 >= self.len() as u64 {
            return Err(CoreError::out_of_range(
                arg,
                node,
                format!("node ids must lie in [0, {}) (the tree has {} nodes)", self.len(), self.len()),
            ));
        }
        Ok(node as u32)
    }

    /// Validate node ids given as i64 (from any integer array).
    pub fn check_nodes(&self, arg: &str, nodes: &[i64]) -> Result<Vec<u32>> {
        nodes.iter().map(|&n| self.check_node(arg, n)).collect()
    }

    /// True when `node` is terminal.
    #[inline]
    pub fn is_terminal(&self, node: u32) -> bool {
        self.key[node as usize] & TERMINAL_BIT != 0
    }

    /// True when `node` has children.
    #[inline]
    pub fn is_expanded(&self, node: u32) -> bool {
        self.child_count[node as usize] > 0
    }

    /// Expand `nodes[i]` with the children `priors[offsets[i]..offsets[i+1]]` (CSR). Priors must be
    /// finite and >= 0 (they are used as given: normalize beforehand if the policy needs it). Every
    /// node must exist, be distinct, unexpanded and not terminal; each gets >= 1 child. Returns the
    /// new ids (contiguous, in CSR order). Nothing changes when an error is returned.
    pub fn expand(
        &mut self,
        nodes: &[u32],
        offsets: &[i64],
        priors: &[f32],
        data: &ChildData,
    ) -> Result<Vec<u32>> {
        self.expand_range(nodes, offsets, priors, data).map(|r| r.collect())
    }

    /// [`SearchTree::expand`] returning the new ids as a range, without materializing them.
    pub fn expand_range(
        &mut self,
        nodes: &[u32],
        offsets: &[i64],
        priors: &[f32],
        data: &ChildData,
    ) -> Result<Range<u32>> {
        if offsets.len() != nodes.len() + 1 {
            return Err(CoreError::invalid(
                "offsets",
                format!("length {} != len(nodes) + 1 ({})", offsets.len(), nodes.len() + 1),
            ));
        }
        if offsets[0] != 0 {
            return Err(CoreError::invalid("offsets", format!("must start at 0, got {}", offsets[0])));
        }
        let m = priors.len();
        if offsets[nodes.len()] != m as i64 {
            return Err(CoreError::invalid(
                "offsets",
                format!("must end at len(priors) ({m}), got {}", offsets[nodes.len()]),
            ));
        }
        for (i, w) in offsets.windows(2).enumerate() {
            let cnt = w[1] - w[0];
            if cnt < 1 {
                return Err(CoreError::invalid(
                    "priors",
                    format!(
                        "node {} gets {cnt} children; every expanded node needs >= 1 (empty proposal)",
                        nodes[i]
                    ),
                ));
            }
            if cnt as usize > MAX_CHILDREN {
                return Err(CoreError::limit(
                    "children per node",
                    MAX_CHILDREN as u64,
                    format!("node {} gets {cnt}", nodes[i]),
                ));
            }
        }
        // branch-free scan (vectorizes); the loop only runs to name the bad entry
        if !priors.iter().fold(true, |ok, &p| ok & p.is_finite() & (p >= 0.0)) {
            for (j, &p) in priors.iter().enumerate() {
                if !p.is_finite() {
                    return Err(CoreError::non_finite(
                        "priors",
                        format!("priors[{j}] = {p}; priors must be finite"),
                    ));
                }
                if p < 0.0 {
                    return Err(CoreError::invalid(
                        "priors",
                        format!("priors[{j}] = {p}; priors must be >= 0"),
                    ));
                }
            }
        }
        for (name, len) in
            [("terminal", data.terminal.len()), ("payload", data.payload.len()), ("text", data.text.len())]
        {
            if len != 0 && len != m {
                return Err(CoreError::invalid(name, format!("length {len} != len(priors) ({m})")));
            }
        }
        for &n in nodes {
            if n as usize >= self.len() {
                return Err(CoreError::out_of_range(
                    "nodes",
                    n,
                    format!("node ids must lie in [0, {})", self.len()),
                ));
            }
            if self.is_expanded(n) {
                return Err(CoreError::invalid("nodes", format!("node {n} is already expanded")));
            }
            if self.is_terminal(n) {
                return Err(CoreError::invalid(
                    "nodes",
                    format!("node {n} is terminal and cannot be expanded"),
                ));
            }
        }
        // duplicates: mark each node's (zero, checked above) child count; a marked one repeats
        for (i, &n) in nodes.iter().enumerate() {
            let nu = n as usize;
            if self.child_count[nu] != 0 {
                for &u in &nodes[..i] {
                    self.child_count[u as usize] = 0;
                }
                return Err(duplicate_error(nodes));
            }
            self.child_count[nu] = 1;
        }
        if let Err(e) = self.check_capacity(m, "expand") {
            for &u in nodes {
                self.child_count[u as usize] = 0;
            }
            return Err(e);
        }
        let start = self.len();
        let end = start + m;
        // bulk writes: constant-filled fields first, then one pass per parent for the rest
        self.child_start.resize(end, 0);
        self.child_count.resize(end, 0);
        self.pending.resize(end, 0);
        self.visits.resize(end, 0);
        self.value_sum.resize(end, 0.0);
        self.prior.extend_from_slice(priors);
        if data.payload.is_empty() {
            self.payload.resize(end, -1);
        } else {
            self.payload.extend_from_slice(&data.payload);
        }
        if data.text.is_empty() {
            let e = self.text_buf.len() as u64;
            self.text_end.resize(end, e);
        } else {
            for t in &data.text {
                self.push_text(t);
            }
        }
        self.parent.reserve(m);
        self.depth.reserve(m);
        self.root_of.reserve(m);
        self.key.reserve(m);
        for (i, &n) in nodes.iter().enumerate() {
            let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
            let nu = n as usize;
            self.child_start[nu] = (start + a) as u32;
            self.child_count[nu] = (b - a) as u16;
            let pkey = self.key[nu] & KEY_MASK;
            let depth = self.depth[nu] + 1;
            let root_ord = self.root_of[nu];
            let len = self.parent.len() + (b - a);
            self.parent.resize(len, n);
            self.depth.resize(len, depth);
            self.root_of.resize(len, root_ord);
            for j in 0..(b - a) {
                self.key.push(child_key(self.seed, pkey, j as u32));
            }
        }
        for (j, &t) in data.terminal.iter().enumerate() {
            if t {
                self.key[start + j] |= TERMINAL_BIT;
            }
        }
        Ok(start as u32..end as u32)
    }

    /// Mark or unmark nodes as terminal (a terminal node is never expanded or descended through).
    pub fn set_terminal(&mut self, nodes: &[u32], terminal: bool) -> Result<()> {
        for &n in nodes {
            if terminal && self.is_expanded(n) {
                return Err(CoreError::invalid(
                    "nodes",
                    format!("node {n} has children and cannot be terminal"),
                ));
            }
        }
        for &n in nodes {
            if terminal {
                self.key[n as usize] |= TERMINAL_BIT;
            } else {
                self.key[n as usize] &= KEY_MASK;
            }
        }
        Ok(())
    }

    /// Descend from `root` to the best available leaf, or None when every leaf below is in flight.
    /// Monomorphized per policy (`UCT` const) so the child loop carries no policy branch.
    fn descend<const UCT: bool>(&self, root: u32, p: &SelectParams, blocked: &mut Vec<u32>) -> Option<u32> {
        let (c, fpu, vl) = (p.c, p.fpu, p.virtual_loss);
        let mut node = root;
        loop {
            let nu = node as usize;
            let cnt = self.child_count[nu] as usize;
            if cnt == 0 {
                if self.pending[nu] > 0 {
                    // only reachable for the root: every other leaf is filtered by its parent
                    return None;
                }
                return Some(node);
            }
            let n_p = self.visits[nu] as f64 + self.pending[nu] as f64;
            let (cp, ln_np) = if UCT { (0.0, n_p.max(1.0).ln()) } else { (c * n_p.sqrt(), 0.0) };
            let start = self.child_start[nu] as usize;
            let end = start + cnt;
            // slices of equal length let the compiler drop per-field bounds checks
            let (vis, pen) = (&self.visits[start..end], &self.pending[start..end]);
            let (ws, pr) = (&self.value_sum[start..end], &self.prior[start..end]);
            let (ks, cc) = (&self.key[start..end], &self.child_count[start..end]);
            let (mut best_s, mut best_k, mut best_j) = (f64::NEG_INFINITY, u32::MAX, usize::MAX);
            for j in 0..cnt {
                let pd = pen[j];
                if cc[j] == 0 {
                    if pd > 0 {
                        continue; // a leaf already in flight
                    }
                } else if !blocked.is_empty() && blocked.contains(&((start + j) as u32)) {
                    continue;
                }
                let v = vis[j];
                let s = if pd == 0 && v == 0 {
                    if UCT {
                        f64::INFINITY
                    } else {
                        fpu + cp * pr[j] as f64
                    }
                } else {
                    let pdf = pd as f64;
                    let n_c = v as f64 + pdf;
                    let q = (ws[j] - vl * pdf) / n_c;
                    if UCT {
                        q + c * (ln_np / n_c).sqrt()
                    } else {
                        q + cp * pr[j] as f64 / (1.0 + n_c)
                    }
                };
                let k = ks[j] & KEY_MASK;
                if best_j == usize::MAX || s > best_s || (s == best_s && k < best_k) {
                    (best_s, best_k, best_j) = (s, k, j);
                }
            }
            let best = (best_j != usize::MAX).then(|| (best_s, best_k, (start + best_j) as u32));
            match best {
                Some((_, _, c)) => node = c,
                None => {
                    blocked.push(node);
                    if node == root {
                        return None;
                    }
                    node = self.parent[nu];
                }
            }
        }
    }

    fn add_pending(&mut self, leaf: u32) -> Result<()> {
        // the root carries the largest pending count of its path
        let root = self.roots[self.root_of[leaf as usize] as usize];
        if self.pending[root as usize] == u16::MAX {
            return Err(CoreError::limit(
                "in-flight leaves per root",
                u16::MAX as u64,
                "back up selected leaves first",
            ));
        }
        let mut n = leaf;
        while n != NO_PARENT {
            self.pending[n as usize] += 1;
            n = self.parent[n as usize];
        }
        Ok(())
    }

    /// Select up to `n` distinct leaves under each root in `roots` (PUCT/UCT with virtual loss).
    /// A leaf is a node without children (unexpanded or terminal); a leaf already in flight (selected
    /// and not yet backed up) is never returned again. Each selected leaf adds one pending visit to
    /// every node on its path until [`SearchTree::backup`]. Returns the leaves grouped by root and
    /// the CSR offsets (`offsets.len() == roots.len() + 1`).
    pub fn select(&mut self, roots: &[u32], n: usize, p: &SelectParams) -> Result<(Vec<u32>, Vec<i64>)> {
        check_params(p)?;
        for &r in roots {
            if r as usize >= self.len() {
                return Err(CoreError::out_of_range(
                    "roots",
                    r,
                    format!("node ids must lie in [0, {})", self.len()),
                ));
            }
        }
        let mut leaves = Vec::with_capacity(roots.len() * n.min(1024));
        let mut offsets = Vec::with_capacity(roots.len() + 1);
        offsets.push(0i64);
        let mut blocked: Vec<u32> = Vec::new();
        for &r in roots {
            blocked.clear();
            for _ in 0..n {
                let found = match p.policy {
                    Policy::Puct => self.descend::<false>(r, p, &mut blocked),
                    Policy::Uct => self.descend::<true>(r, p, &mut blocked),
                };
                match found {
                    Some(leaf) => {
                        self.add_pending(leaf)?;
                        leaves.push(leaf);
                    }
                    None => break,
                }
            }
            offsets.push(leaves.len() as i64);
        }
        Ok((leaves, offsets))
    }

    /// Add `values[i]` to every node on the path of `leaves[i]` (one visit each) and remove the
    /// leaf's pending visit when it has one. Values must be finite. All-or-nothing on error.
    pub fn backup(&mut self, leaves: &[u32], values: &[f64]) -> Result<()> {
        if leaves.len() != values.len() {
            return Err(CoreError::invalid(
                "values",
                format!("length {} != len(leaves) ({})", values.len(), leaves.len()),
            ));
        }
        for (i, &v) in values.iter().enumerate() {
            if !v.is_finite() {
                return Err(CoreError::non_finite(
                    "values",
                    format!("values[{i}] = {v}; values must be finite"),
                ));
            }
        }
        for &l in leaves {
            if l as usize >= self.len() {
                return Err(CoreError::out_of_range(
                    "leaves",
                    l,
                    format!("node ids must lie in [0, {})", self.len()),
                ));
            }
        }
        for (&l, &v) in leaves.iter().zip(values) {
            let drop = self.pending[l as usize] > 0;
            let mut n = l;
            while n != NO_PARENT {
                let nu = n as usize;
                self.visits[nu] = self.visits[nu].saturating_add(1);
                self.value_sum[nu] += v;
                if drop {
                    self.pending[nu] -= 1;
                }
                n = self.parent[nu];
            }
        }
        Ok(())
    }

    /// Positions of the `k` best candidates per group (score descending; ties: lower tie key, then
    /// lower node id, then earlier position). `groups` defaults to each node's root. The result is
    /// ordered by group label, then rank. NaN scores are rejected; ±inf are allowed.
    pub fn top_k(
        &self,
        nodes: &[u32],
        scores: &[f64],
        k: usize,
        groups: Option<&[i64]>,
    ) -> Result<Vec<usize>> {
        if scores.len() != nodes.len() {
            return Err(CoreError::invalid(
                "scores",
                format!("length {} != len(nodes) ({})", scores.len(), nodes.len()),
            ));
        }
        if let Some(g) = groups {
            if g.len() != nodes.len() {
                return Err(CoreError::invalid(
                    "groups",
                    format!("length {} != len(nodes) ({})", g.len(), nodes.len()),
                ));
            }
        }
        for (i, s) in scores.iter().enumerate() {
            if s.is_nan() {
                return Err(CoreError::non_finite("scores", format!("scores[{i}] is NaN")));
            }
        }
        for &n in nodes {
            if n as usize >= self.len() {
                return Err(CoreError::out_of_range(
                    "nodes",
                    n,
                    format!("node ids must lie in [0, {})", self.len()),
                ));
            }
        }
        // one flat sort key per candidate: (group, score descending, tie key, node, position)
        let mut order: Vec<(i64, u64, u32, u32, u32)> = (0..nodes.len())
            .map(|i| {
                let n = nodes[i] as usize;
                let g = match groups {
                    Some(g) => g[i],
                    None => self.root_of[n] as i64,
                };
                (g, !ordered_bits(scores[i]), self.key[n] & KEY_MASK, nodes[i], i as u32)
            })
            .collect();
        let mut out = Vec::with_capacity(nodes.len().min(k.saturating_mul(64)));
        order.sort_unstable_by_key(|e| e.0);
        let mut a = 0;
        while a < order.len() {
            let g = order[a].0;
            let mut b = a + 1;
            while b < order.len() && order[b].0 == g {
                b += 1;
            }
            let seg = &mut order[a..b];
            let take = k.min(seg.len());
            if take > 0 {
                if take < seg.len() {
                    seg.select_nth_unstable(take - 1);
                }
                seg[..take].sort_unstable();
                out.extend(seg[..take].iter().map(|e| e.4 as usize));
            }
            a = b;
        }
        Ok(out)
    }

    /// Push nodes onto their root's best-first frontier with the given priorities (NaN rejected).
    pub fn push(&mut self, nodes: &[u32], priorities: &[f64]) -> Result<()> {
        if priorities.len() != nodes.len() {
            return Err(CoreError::invalid(
                "priorities",
                format!("length {} != len(nodes) ({})", priorities.len(), nodes.len()),
            ));
        }
        for (i, s) in priorities.iter().enumerate() {
            if s.is_nan() {
                return Err(CoreError::non_finite("priorities", format!("priorities[{i}] is NaN")));
            }
        }
        for &n in nodes {
            if n as usize >= self.len() {
                return Err(CoreError::out_of_range(
                    "nodes",
                    n,
                    format!("node ids must lie in [0, {})", self.len()),
                ));
            }
        }
        for (&n, &s) in nodes.iter().zip(priorities) {
            let e = Entry { priority: s, key: self.key[n as usize] & KEY_MASK, node: n };
            let r = self.root_of[n as usize] as usize;
            self.frontier[r].push(e);
        }
        Ok(())
    }

    /// Pop up to `k` highest-priority nodes from the frontier of each root in `roots`
    /// (nodes grouped by root, CSR offsets).
    pub fn pop_best(&mut self, roots: &[u32], k: usize) -> Result<(Vec<u32>, Vec<i64>)> {
        let ords = self.root_ordinals(roots)?;
        let mut out = Vec::new();
        let mut offsets = vec![0i64];
        for r in ords {
            for _ in 0..k {
                match self.frontier[r].pop() {
                    Some(e) => out.push(e.node),
                    None => break,
                }
            }
            offsets.push(out.len() as i64);
        }
        Ok((out, offsets))
    }

    /// Frontier size of each root in `roots`.
    pub fn frontier_len(&self, roots: &[u32]) -> Result<Vec<usize>> {
        Ok(self.root_ordinals(roots)?.into_iter().map(|r| self.frontier[r].0.len()).collect())
    }

    fn root_ordinals(&self, roots: &[u32]) -> Result<Vec<usize>> {
        roots
            .iter()
            .map(|&r| {
                if r as usize >= self.len() || self.parent[r as usize] != NO_PARENT {
                    Err(CoreError::invalid("roots", format!("{r} is not a root id")))
                } else {
                    Ok(self.root_of[r as usize] as usize)
                }
            })
            .collect()
    }

    /// Node ids from the root down to `node` (inclusive).
    pub fn path(&self, node: u32) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.depth[node as usize] as usize + 1);
        let mut n = node;
        while n != NO_PARENT {
            out.push(n);
            n = self.parent[n as usize];
        }
        out.reverse();
        out
    }

    fn mean(&self, n: usize) -> f64 {
        if self.visits[n] == 0 {
            f64::NAN
        } else {
            self.value_sum[n] / self.visits[n] as f64
        }
    }

    /// Descend from `root` by `by` through visited children; returns the node where it stops.
    pub fn best_leaf(&self, root: u32, by: BestBy) -> u32 {
        let mut node = root;
        loop {
            let nu = node as usize;
            let start = self.child_start[nu] as usize;
            let cnt = self.child_count[nu] as usize;
            let mut best: Option<(u32, f64, u32, u32)> = None;
            for c in start..start + cnt {
                let v = self.visits[c];
                if v == 0 {
                    continue;
                }
                let q = self.mean(c);
                let k = self.key[c] & KEY_MASK;
                let better = match best {
                    None => true,
                    Some((bv, bq, bk, bn)) => {
                        let primary = match by {
                            BestBy::Visits => v.cmp(&bv).then(q.total_cmp(&bq)),
                            BestBy::Value => q.total_cmp(&bq).then(v.cmp(&bv)),
                        };
                        primary.is_gt() || (primary.is_eq() && (k, c as u32) < (bk, bn))
                    }
                };
                if better {
                    best = Some((v, q, k, c as u32));
                }
            }
            match best {
                Some((_, _, _, c)) => node = c,
                None => return node,
            }
        }
    }

    /// Sibling pairs `(parent, chosen, rejected)` among children with >= `min_visits` visits whose
    /// mean values differ by at least `margin` (preference data from a finished tree).
    pub fn sibling_pairs(&self, margin: f64, min_visits: u32) -> Result<Vec<(u32, u32, u32)>> {
        if !margin.is_finite() || margin < 0.0 {
            return Err(CoreError::invalid("margin", format!("must be finite and >= 0, got {margin}")));
        }
        let mut out = Vec::new();
        let mut kids: Vec<(usize, f64)> = Vec::new();
        for p in 0..self.len() {
            let cnt = self.child_count[p] as usize;
            if cnt < 2 {
                continue;
            }
            let start = self.child_start[p] as usize;
            kids.clear();
            for c in start..start + cnt {
                if self.visits[c] >= min_visits.max(1) {
                    kids.push((c, self.mean(c)));
                }
            }
            for &(a, qa) in &kids {
                for &(b, qb) in &kids {
                    if a != b && qa - qb >= margin && qa > qb {
                        out.push((p as u32, a as u32, b as u32));
                    }
                }
            }
        }
        Ok(out)
    }

    // ---- read access (plain slices; the bindings turn them into numpy arrays) ----

    /// Parent per node (`NO_PARENT` for roots).
    pub fn parents(&self) -> &[u32] {
        &self.parent
    }
    /// Depth per node (roots: 0).
    pub fn depths(&self) -> &[u32] {
        &self.depth
    }
    /// Prior per node.
    pub fn priors(&self) -> &[f32] {
        &self.prior
    }
    /// Real visits per node.
    pub fn visits(&self) -> &[u32] {
        &self.visits
    }
    /// Sum of backed-up values per node.
    pub fn value_sums(&self) -> &[f64] {
        &self.value_sum
    }
    /// In-flight (virtual) visits per node.
    pub fn pending(&self) -> &[u16] {
        &self.pending
    }
    /// Index of the first child per node (meaningless when it has none).
    pub fn child_starts(&self) -> &[u32] {
        &self.child_start
    }
    /// Number of children per node.
    pub fn child_counts(&self) -> &[u16] {
        &self.child_count
    }
    /// Root ordinal (problem index) per node.
    pub fn root_ordinals_all(&self) -> &[u32] {
        &self.root_of
    }
    /// Payload per node.
    pub fn payloads(&self) -> &[i64] {
        &self.payload
    }
    /// Step text of node `n` (must exist).
    pub fn text(&self, n: usize) -> &str {
        let start = if n == 0 { 0 } else { self.text_end[n - 1] as usize };
        self.text_buf.get(start..self.text_end[n] as usize).unwrap_or("")
    }

    fn push_text(&mut self, t: &str) {
        self.text_buf.push_str(t);
        self.text_end.push(self.text_buf.len() as u64);
    }
    /// Mean value per node (NaN when unvisited).
    pub fn means(&self) -> Vec<f64> {
        (0..self.len()).map(|n| self.mean(n)).collect()
    }
    /// Terminal flag per node.
    pub fn terminals(&self) -> Vec<bool> {
        self.key.iter().map(|k| k & TERMINAL_BIT != 0).collect()
    }
    /// Tie-break key per node (31 bits).
    pub fn tie_keys(&self) -> Vec<u32> {
        self.key.iter().map(|k| k & KEY_MASK).collect()
    }

    /// Set the payload of nodes.
    pub fn set_payload(&mut self, nodes: &[u32], payload: &[i64]) -> Result<()> {
        if nodes.len() != payload.len() {
            return Err(CoreError::invalid(
                "payload",
                format!("length {} != len(nodes) ({})", payload.len(), nodes.len()),
            ));
        }
        for (&n, &p) in nodes.iter().zip(payload) {
            self.payload[n as usize] = p;
        }
        Ok(())
    }

    /// Graphviz DOT text of the forest: one node per arena node with its text, visits and mean value.
    pub fn to_dot(&self, max_label: usize) -> String {
        use std::fmt::Write;
        let mut s =
            String::from("digraph search {\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
        for n in 0..self.len() {
            let mut label: String = self.text(n).chars().take(max_label).collect();
            if self.text(n).chars().count() > max_label {
                label.push('…');
            }
            let label = escape_dot(&label);
            let q = self.mean(n);
            let qs = if q.is_nan() { "-".to_string() } else { format!("{q:.3}") };
            let style = if self.is_terminal(n as u32) { ", style=bold" } else { "" };
            let _ = writeln!(
                s,
                "  n{n} [label=\"#{n} {label}\\nN={} Q={qs} P={:.3}\"{style}];",
                self.visits[n], self.prior[n]
            );
            if self.parent[n] != NO_PARENT {
                let _ = writeln!(s, "  n{} -> n{n};", self.parent[n]);
            }
        }
        s.push_str("}\n");
        s
    }

    /// JSON checkpoint (exact: floats round-trip bit for bit).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| CoreError::format("SearchTree", "serialize", e.to_string()))
    }

    /// Restore a checkpoint written by [`SearchTree::to_json`], checking every invariant.
    pub fn from_json(s: &str) -> Result<Self> {
        let t: SearchTree = serde_json::from_str(s).map_err(|e| {
            CoreError::format("json", format!("line {} column {}", e.line(), e.column()), e.to_string())
        })?;
        t.validate()?;
        let mut t = t;
        // a hand-edited checkpoint may break the heap order: rebuild each heap from its entries
        for h in &mut t.frontier {
            let entries = std::mem::take(&mut h.0);
            for e in entries {
                h.push(e);
            }
        }
        Ok(t)
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(CoreError::format("json", "tree", msg));
        let n = self.len();
        let lens = [
            self.child_start.len(),
            self.child_count.len(),
            self.pending.len(),
            self.prior.len(),
            self.visits.len(),
            self.value_sum.len(),
            self.key.len(),
            self.depth.len(),
            self.root_of.len(),
            self.payload.len(),
            self.text_end.len(),
        ];
        if lens.iter().any(|&l| l != n) {
            return bad(format!("per-node arrays have different lengths ({n} vs {lens:?})"));
        }
        if self.max_nodes == 0 || self.max_nodes > MAX_NODES_LIMIT || n > self.max_nodes as usize {
            return bad(format!("max_nodes {} is invalid for {n} nodes", self.max_nodes));
        }
        let mut prev = 0u64;
        for (i, &e) in self.text_end.iter().enumerate() {
            if e < prev || e as usize > self.text_buf.len() || !self.text_buf.is_char_boundary(e as usize) {
                return bad(format!("text offsets are invalid at node {i}"));
            }
            prev = e;
        }
        if prev as usize != self.text_buf.len() {
            return bad("text offsets do not cover the text buffer".into());
        }
        if self.frontier.len() != self.roots.len() {
            return bad("one frontier per root is required".into());
        }
        for (ord, &r) in self.roots.iter().enumerate() {
            if r as usize >= n
                || self.parent[r as usize] != NO_PARENT
                || self.root_of[r as usize] as usize != ord
            {
                return bad(format!("root {r} is inconsistent"));
            }
        }
        for i in 0..n {
            let p = self.parent[i];
            if p == NO_PARENT {
                if self.depth[i] != 0
                    || (self.root_of[i] as usize) >= self.roots.len()
                    || self.roots[self.root_of[i] as usize] as usize != i
                {
                    return bad(format!("node {i} has no parent but is not a listed root"));
                }
            } else {
                let pu = p as usize;
                if pu >= i {
                    return bad(format!("node {i} has parent {p} (parents precede children)"));
                }
                let (s, c) = (self.child_start[pu] as usize, self.child_count[pu] as usize);
                if i < s || i >= s + c {
                    return bad(format!("node {i} lies outside its parent's child range"));
                }
                if self.depth[i] != self.depth[pu] + 1 || self.root_of[i] != self.root_of[pu] {
                    return bad(format!("node {i} has inconsistent depth or root"));
                }
                if self.pending[i] > self.pending[pu] {
                    return bad(format!("node {i} has more in-flight visits than its parent"));
                }
            }
            let c = self.child_count[i] as usize;
            if c > 0 {
                let s = self.child_start[i] as usize;
                if s + c > n || s <= i {
                    return bad(format!("node {i} has child range out of bounds"));
                }
                if self.parent[s..s + c].iter().any(|&p| p as usize != i) {
                    return bad(format!("node {i} lists children whose parent is another node"));
                }
                if self.key[i] & TERMINAL_BIT != 0 {
                    return bad(format!("node {i} is terminal and has children"));
                }
            }
            if !self.prior[i].is_finite() || self.prior[i] < 0.0 || !self.value_sum[i].is_finite() {
                return bad(format!("node {i} has a non-finite prior or value"));
            }
        }
        for h in &self.frontier {
            for e in &h.0 {
                if e.node as usize >= n || e.priority.is_nan() {
                    return bad(format!("frontier entry {} is invalid", e.node));
                }
            }
        }
        Ok(())
    }
}

fn check_params(p: &SelectParams) -> Result<()> {
    if !p.c.is_finite() || p.c < 0.0 {
        return Err(CoreError::invalid("c", format!("must be finite and >= 0, got {}", p.c)));
    }
    if !p.virtual_loss.is_finite() || p.virtual_loss < 0.0 {
        return Err(CoreError::invalid(
            "virtual_loss",
            format!("must be finite and >= 0, got {}", p.virtual_loss),
        ));
    }
    if !p.fpu.is_finite() {
        return Err(CoreError::non_finite("fpu", format!("must be finite, got {}", p.fpu)));
    }
    Ok(())
}

fn escape_dot(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
impl SearchTree {
    pub(crate) fn pending_mut_for_test(&mut self, n: u32) {
        self.pending[n as usize] += 1;
    }
    pub(crate) fn oracle_backup_for_test(&mut self, n: u32, v: f64) {
        self.visits[n as usize] += 1;
        self.value_sum[n as usize] += v;
    }
}
