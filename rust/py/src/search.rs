//! Python bindings of `stepfuse_core::search`: the `SearchTree` class and `vote`.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use stepfuse_core::search::{self, BestBy, ChildData, Policy, SearchTree, SelectParams, NO_PARENT};

use crate::convert::int_array;
use crate::errors::{invalid, invalid_type, PyRes};

/// 1-D float64 copy of `obj` (any real dtype or sequence); rejects non-numeric input by name.
fn f64_vec(obj: &Bound<'_, PyAny>, arg: &str) -> PyRes<Vec<f64>> {
    // fast paths: contiguous 1-D float64 / float32 arrays need no Python-level conversion
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f64>>() {
        if let Ok(s) = a.as_slice() {
            return Ok(s.to_vec());
        }
    }
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f32>>() {
        if let Ok(s) = a.as_slice() {
            return Ok(s.iter().map(|&x| x as f64).collect());
        }
    }
    if obj.is_instance_of::<PyString>() {
        return Err(invalid_type(arg, "must be a float array or sequence, got str"));
    }
    let py = obj.py();
    let np = py.import("numpy")?;
    let arr = np
        .call_method1("asarray", (obj,))
        .map_err(|e| invalid_type(arg, format!("must be array-like ({})", e.value(py))))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    let size: usize = arr.getattr("size")?.extract()?;
    if size > 0 && !matches!(kind.as_str(), "f" | "i" | "u") {
        return Err(invalid_type(arg, format!("must have a real numeric dtype, got kind {kind:?}")));
    }
    let arr = np.call_method("ascontiguousarray", (arr,), Some(&[("dtype", "float64")].into_py_dict(py)?))?;
    let a: PyReadonlyArray1<'_, f64> = arr.extract().map_err(|_| {
        invalid(
            arg,
            format!(
                "must be 1-D, got ndim={}",
                arr.getattr("ndim").and_then(|x| x.extract::<i64>()).unwrap_or(-1)
            ),
        )
    })?;
    if a.ndim() != 1 {
        return Err(invalid(arg, "must be 1-D"));
    }
    Ok(a.as_slice().map(|s| s.to_vec()).unwrap_or_else(|_| a.as_array().to_vec()))
}

use pyo3::types::IntoPyDict;

/// 1-D float32 copy of `obj`: a contiguous float32 array is copied as is (no float64 round trip),
/// anything else goes through [`f64_vec`] and is rounded to f32.
fn f32_vec(obj: &Bound<'_, PyAny>, arg: &str) -> PyRes<Vec<f32>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f32>>() {
        if let Ok(s) = a.as_slice() {
            return Ok(s.to_vec());
        }
    }
    Ok(f64_vec(obj, arg)?.into_iter().map(|x| x as f32).collect())
}

fn i64_vec(obj: &Bound<'_, PyAny>, arg: &str) -> PyRes<Vec<i64>> {
    int_array(obj, arg)?.to_i64(arg)
}

fn bool_vec(obj: &Bound<'_, PyAny>, arg: &str) -> PyRes<Vec<bool>> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (obj,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    let size: usize = arr.getattr("size")?.extract()?;
    if size > 0 && kind != "b" {
        return Err(invalid_type(arg, format!("must be a bool array, got dtype kind {kind:?}")));
    }
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 1 {
        return Err(invalid(arg, format!("must be 1-D, got ndim={ndim}")));
    }
    Ok(arr.call_method0("tolist")?.extract::<Vec<bool>>().unwrap_or_default())
}

/// Node ids plus CSR offsets per root.
type IdsAndOffsets<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

fn i64_out<'py>(py: Python<'py>, v: impl IntoIterator<Item = i64>) -> Bound<'py, PyArray1<i64>> {
    v.into_iter().collect::<Vec<i64>>().into_pyarray(py)
}

fn ids_out<'py>(py: Python<'py>, v: &[u32]) -> Bound<'py, PyArray1<i64>> {
    i64_out(py, v.iter().map(|&x| x as i64))
}

/// An arena of search trees (one root per problem) for test-time search over reasoning steps.
///
/// Nodes are integer ids; children of a node form a contiguous id range. Batched operations take
/// and return numpy arrays: `expand(nodes, offsets, priors)` (CSR children), `select(n)` (n distinct
/// leaves per root under PUCT/UCT with virtual loss), `backup(leaves, values)`, `top_k(nodes,
/// scores, k)` (beam pruning), `push`/`pop_best` (best-first frontier), `path`, `best_leaf`.
/// Ties are broken by a seeded structural hash, so a problem's tree does not depend on the batch
/// it runs in. Hot state is 32 bytes per node (`hot_bytes_per_node`). Checkpoint with `to_json` /
/// `from_json` or pickle; draw with `to_dot`.
#[pyclass(module = "stepfuse._core", name = "SearchTree")]
pub struct PySearchTree {
    inner: SearchTree,
}

impl PySearchTree {
    fn nodes(&self, obj: &Bound<'_, PyAny>, arg: &str) -> PyRes<Vec<u32>> {
        let v = i64_vec(obj, arg)?;
        Ok(self.inner.check_nodes(arg, &v)?)
    }

    fn node(&self, node: i64, arg: &str) -> PyRes<u32> {
        Ok(self.inner.check_nodes(arg, &[node])?[0])
    }

    fn roots_arg(&self, roots: Option<&Bound<'_, PyAny>>) -> PyRes<Vec<u32>> {
        match roots {
            None => Ok(self.inner.roots().to_vec()),
            Some(r) => {
                let v = self.nodes(r, "roots")?;
                let parents = self.inner.parents();
                if let Some(&bad) = v.iter().find(|&&x| parents[x as usize] != NO_PARENT) {
                    return Err(invalid("roots", format!("{bad} is not a root id")));
                }
                Ok(v)
            }
        }
    }

    fn select_nodes(&self, nodes: Option<&Bound<'_, PyAny>>) -> PyRes<Option<Vec<u32>>> {
        nodes.map(|n| self.nodes(n, "nodes")).transpose()
    }
}

fn gather<T: Copy>(all: &[T], sel: &Option<Vec<u32>>) -> Vec<T> {
    match sel {
        None => all.to_vec(),
        Some(s) => s.iter().map(|&i| all[i as usize]).collect(),
    }
}

#[pymethods]
impl PySearchTree {
    /// Make a forest with `roots` root nodes; `seed` drives tie-breaking, `max_nodes` caps growth.
    #[new]
    #[pyo3(signature = (roots = 1, *, seed = 0, max_nodes = 10_000_000))]
    fn new(roots: i64, seed: u64, max_nodes: u64) -> PyRes<Self> {
        if roots < 0 {
            return Err(invalid("roots", format!("must be >= 0, got {roots}")));
        }
        let mut inner = SearchTree::new(seed, max_nodes)?;
        inner.add_roots(roots as usize, &[], &[])?;
        Ok(PySearchTree { inner })
    }

    /// Remove every node and root, keeping the memory for reuse (then call `add_roots`).
    fn clear(&mut self) {
        self.inner.clear();
    }

    /// Reserve room for `additional` more nodes (growth then never reallocates the arena).
    fn reserve(&mut self, additional: usize) -> PyRes<()> {
        Ok(self.inner.reserve(additional)?)
    }

    /// Bytes of per-node state read by selection and backup (32).
    #[staticmethod]
    fn hot_bytes_per_node() -> usize {
        SearchTree::new(0, 1).map(|t| t.hot_bytes_per_node()).unwrap_or(0)
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed()
    }

    #[getter]
    fn max_nodes(&self) -> u64 {
        self.inner.max_nodes()
    }

    #[getter]
    fn num_nodes(&self) -> usize {
        self.inner.len()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Root ids (one per problem, in creation order).
    #[getter]
    fn roots<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        ids_out(py, self.inner.roots())
    }

    /// Add `n` roots; returns their ids.
    #[pyo3(signature = (n, *, payload = None, text = None))]
    fn add_roots<'py>(
        &mut self,
        py: Python<'py>,
        n: i64,
        payload: Option<&Bound<'py, PyAny>>,
        text: Option<Vec<String>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        if n < 0 {
            return Err(invalid("n", format!("must be >= 0, got {n}")));
        }
        let payload = payload.map(|p| i64_vec(p, "payload")).transpose()?.unwrap_or_default();
        let ids = self.inner.add_roots(n as usize, &payload, &text.unwrap_or_default())?;
        Ok(ids_out(py, &ids))
    }

    /// Expand `nodes` with children whose priors are `priors[offsets[i]:offsets[i+1]]`; returns the new ids.
    #[pyo3(signature = (nodes, offsets, priors, *, terminal = None, payload = None, text = None))]
    #[allow(clippy::too_many_arguments)]
    fn expand<'py>(
        &mut self,
        py: Python<'py>,
        nodes: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        priors: &Bound<'py, PyAny>,
        terminal: Option<&Bound<'py, PyAny>>,
        payload: Option<&Bound<'py, PyAny>>,
        text: Option<Vec<String>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let nodes = self.nodes(nodes, "nodes")?;
        let offsets = i64_vec(offsets, "offsets")?;
        let priors = f32_vec(priors, "priors")?;
        let data = ChildData {
            terminal: terminal.map(|t| bool_vec(t, "terminal")).transpose()?.unwrap_or_default(),
            payload: payload.map(|p| i64_vec(p, "payload")).transpose()?.unwrap_or_default(),
            text: text.unwrap_or_default(),
        };
        let inner = &mut self.inner;
        let ids = py.detach(move || inner.expand_range(&nodes, &offsets, &priors, &data))?;
        Ok(i64_out(py, (ids.start as i64)..(ids.end as i64)))
    }

    /// Select up to `n` distinct leaves under each root; returns `(leaves, offsets)` grouped by root.
    #[pyo3(signature = (n, *, roots = None, policy = "puct", c = 1.0, virtual_loss = 1.0, fpu = 0.0))]
    #[allow(clippy::too_many_arguments)]
    fn select<'py>(
        &mut self,
        py: Python<'py>,
        n: i64,
        roots: Option<&Bound<'py, PyAny>>,
        policy: &str,
        c: f64,
        virtual_loss: f64,
        fpu: f64,
    ) -> PyRes<IdsAndOffsets<'py>> {
        if n < 0 {
            return Err(invalid("n", format!("must be >= 0, got {n}")));
        }
        let roots = self.roots_arg(roots)?;
        let params = SelectParams { policy: Policy::parse(policy)?, c, virtual_loss, fpu };
        let inner = &mut self.inner;
        let (leaves, offsets) = py.detach(move || inner.select(&roots, n as usize, &params))?;
        Ok((ids_out(py, &leaves), offsets.into_pyarray(py)))
    }

    /// Add `values[i]` along the path of `leaves[i]` and clear the leaf's virtual loss.
    fn backup(&mut self, py: Python<'_>, leaves: &Bound<'_, PyAny>, values: &Bound<'_, PyAny>) -> PyRes<()> {
        let leaves = self.nodes(leaves, "leaves")?;
        let values = f64_vec(values, "values")?;
        let inner = &mut self.inner;
        py.detach(move || inner.backup(&leaves, &values))?;
        Ok(())
    }

    /// Positions of the `k` best-scored candidates per group (default group: the node's root).
    #[pyo3(signature = (nodes, scores, k, *, groups = None))]
    fn top_k<'py>(
        &self,
        py: Python<'py>,
        nodes: &Bound<'py, PyAny>,
        scores: &Bound<'py, PyAny>,
        k: i64,
        groups: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        if k < 0 {
            return Err(invalid("k", format!("must be >= 0, got {k}")));
        }
        let nodes = self.nodes(nodes, "nodes")?;
        let scores = f64_vec(scores, "scores")?;
        let groups = groups.map(|g| i64_vec(g, "groups")).transpose()?;
        let inner = &self.inner;
        let pos = py.detach(move || inner.top_k(&nodes, &scores, k as usize, groups.as_deref()))?;
        Ok(i64_out(py, pos.into_iter().map(|x| x as i64)))
    }

    /// Push nodes onto their root's best-first frontier.
    fn push(&mut self, nodes: &Bound<'_, PyAny>, priorities: &Bound<'_, PyAny>) -> PyRes<()> {
        let nodes = self.nodes(nodes, "nodes")?;
        let pr = f64_vec(priorities, "priorities")?;
        Ok(self.inner.push(&nodes, &pr)?)
    }

    /// Pop up to `k` best nodes per root; returns `(nodes, offsets)`.
    #[pyo3(signature = (k = 1, *, roots = None))]
    fn pop_best<'py>(
        &mut self,
        py: Python<'py>,
        k: i64,
        roots: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<IdsAndOffsets<'py>> {
        if k < 0 {
            return Err(invalid("k", format!("must be >= 0, got {k}")));
        }
        let roots = self.roots_arg(roots)?;
        let (nodes, off) = self.inner.pop_best(&roots, k as usize)?;
        Ok((ids_out(py, &nodes), off.into_pyarray(py)))
    }

    /// Frontier size per root.
    #[pyo3(signature = (*, roots = None))]
    fn frontier_len<'py>(
        &self,
        py: Python<'py>,
        roots: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let roots = self.roots_arg(roots)?;
        Ok(i64_out(py, self.inner.frontier_len(&roots)?.into_iter().map(|x| x as i64)))
    }

    /// Node ids from the root down to `node`.
    fn path<'py>(&self, py: Python<'py>, node: i64) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let n = self.node(node, "node")?;
        Ok(ids_out(py, &self.inner.path(n)))
    }

    /// Children ids of `node`.
    fn children<'py>(&self, py: Python<'py>, node: i64) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let n = self.node(node, "node")? as usize;
        let s = self.inner.child_starts()[n] as i64;
        let c = self.inner.child_counts()[n] as i64;
        Ok(i64_out(py, s..s + c))
    }

    /// Descend from `root` (default: the first root) through visited children by `by`.
    #[pyo3(signature = (root = None, *, by = "visits"))]
    fn best_leaf(&self, root: Option<i64>, by: &str) -> PyRes<i64> {
        let by = BestBy::parse(by)?;
        let root = match root {
            Some(r) => self.node(r, "root")?,
            None => *self.inner.roots().first().ok_or_else(|| invalid("root", "the tree has no root"))?,
        };
        Ok(self.inner.best_leaf(root, by) as i64)
    }

    /// Mark (or unmark) leaves as terminal.
    #[pyo3(signature = (nodes, terminal = true))]
    fn set_terminal(&mut self, nodes: &Bound<'_, PyAny>, terminal: bool) -> PyRes<()> {
        let nodes = self.nodes(nodes, "nodes")?;
        Ok(self.inner.set_terminal(&nodes, terminal)?)
    }

    /// Set the payload id of nodes.
    fn set_payload(&mut self, nodes: &Bound<'_, PyAny>, payload: &Bound<'_, PyAny>) -> PyRes<()> {
        let nodes = self.nodes(nodes, "nodes")?;
        let p = i64_vec(payload, "payload")?;
        Ok(self.inner.set_payload(&nodes, &p)?)
    }

    /// Parent per node (-1 for roots), for `nodes` or all nodes.
    #[pyo3(signature = (nodes = None))]
    fn parents<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let sel = self.select_nodes(nodes)?;
        let v = gather(self.inner.parents(), &sel);
        Ok(i64_out(py, v.into_iter().map(|p| if p == NO_PARENT { -1 } else { p as i64 })))
    }

    /// Depth per node.
    #[pyo3(signature = (nodes = None))]
    fn depths<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(i64_out(py, gather(self.inner.depths(), &sel).into_iter().map(|x| x as i64)))
    }

    /// Root ordinal (problem index) per node.
    #[pyo3(signature = (nodes = None))]
    fn problem<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(i64_out(py, gather(self.inner.root_ordinals_all(), &sel).into_iter().map(|x| x as i64)))
    }

    /// Prior per node (float32).
    #[pyo3(signature = (nodes = None))]
    fn priors<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<f32>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(gather(self.inner.priors(), &sel).into_pyarray(py))
    }

    /// Real visit count per node.
    #[pyo3(signature = (nodes = None))]
    fn visits<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(i64_out(py, gather(self.inner.visits(), &sel).into_iter().map(|x| x as i64)))
    }

    /// In-flight (virtual) visits per node.
    #[pyo3(signature = (nodes = None))]
    fn pending<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(i64_out(py, gather(self.inner.pending(), &sel).into_iter().map(|x| x as i64)))
    }

    /// Sum of backed-up values per node.
    #[pyo3(signature = (nodes = None))]
    fn value_sums<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<f64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(gather(self.inner.value_sums(), &sel).into_pyarray(py))
    }

    /// Mean backed-up value per node (NaN when unvisited).
    #[pyo3(signature = (nodes = None))]
    fn values<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<f64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(gather(&self.inner.means(), &sel).into_pyarray(py))
    }

    /// Number of children per node.
    #[pyo3(signature = (nodes = None))]
    fn child_counts<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(i64_out(py, gather(self.inner.child_counts(), &sel).into_iter().map(|x| x as i64)))
    }

    /// Terminal flag per node.
    #[pyo3(signature = (nodes = None))]
    fn terminal<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<bool>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(gather(&self.inner.terminals(), &sel).into_pyarray(py))
    }

    /// Payload id per node (-1 when unset).
    #[pyo3(signature = (nodes = None))]
    fn payloads<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(gather(self.inner.payloads(), &sel).into_pyarray(py))
    }

    /// Structural tie-break key per node (31 bits, derived from the seed and the child-index path).
    #[pyo3(signature = (nodes = None))]
    fn tie_keys<'py>(
        &self,
        py: Python<'py>,
        nodes: Option<&Bound<'py, PyAny>>,
    ) -> PyRes<Bound<'py, PyArray1<i64>>> {
        let sel = self.select_nodes(nodes)?;
        Ok(i64_out(py, gather(&self.inner.tie_keys(), &sel).into_iter().map(|x| x as i64)))
    }

    /// Step text per node.
    #[pyo3(signature = (nodes = None))]
    fn texts(&self, nodes: Option<&Bound<'_, PyAny>>) -> PyRes<Vec<String>> {
        let t = &self.inner;
        Ok(match self.select_nodes(nodes)? {
            None => (0..t.len()).map(|i| t.text(i).to_string()).collect(),
            Some(s) => s.iter().map(|&i| t.text(i as usize).to_string()).collect(),
        })
    }

    /// Step texts from the root's child down to `node` (the root's own text excluded).
    fn path_texts(&self, node: i64) -> PyRes<Vec<String>> {
        let n = self.node(node, "node")?;
        let t = &self.inner;
        Ok(t.path(n).iter().skip(1).map(|&i| t.text(i as usize).to_string()).collect())
    }

    /// Sibling pairs `(parents, chosen, rejected)` whose mean values differ by >= `margin`.
    #[pyo3(signature = (margin = 0.0, *, min_visits = 1))]
    #[allow(clippy::type_complexity)]
    fn sibling_pairs<'py>(
        &self,
        py: Python<'py>,
        margin: f64,
        min_visits: u32,
    ) -> PyRes<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>)> {
        let pairs = self.inner.sibling_pairs(margin, min_visits)?;
        Ok((
            i64_out(py, pairs.iter().map(|p| p.0 as i64)),
            i64_out(py, pairs.iter().map(|p| p.1 as i64)),
            i64_out(py, pairs.iter().map(|p| p.2 as i64)),
        ))
    }

    /// Graphviz DOT text (labels truncated to `max_label` characters).
    #[pyo3(signature = (max_label = 40))]
    fn to_dot(&self, max_label: usize) -> String {
        self.inner.to_dot(max_label)
    }

    /// Exact JSON checkpoint.
    fn to_json(&self) -> PyRes<String> {
        Ok(self.inner.to_json()?)
    }

    /// Restore a checkpoint written by `to_json` (FormatError when malformed).
    #[staticmethod]
    fn from_json(py: Python<'_>, s: &str) -> PyRes<Self> {
        let s = s.to_string();
        let inner = py.detach(move || SearchTree::from_json(&s))?;
        Ok(PySearchTree { inner })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyRes<Bound<'py, PyTuple>> {
        let py = slf.py();
        let json = slf.borrow().inner.to_json()?;
        let ctor = slf.get_type().getattr("from_json")?;
        Ok(PyTuple::new(py, [ctor.into_any(), PyTuple::new(py, [json])?.into_any()])?)
    }

    fn __copy__(&self) -> Self {
        PySearchTree { inner: self.inner.clone() }
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        PySearchTree { inner: self.inner.clone() }
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<PySearchTree>() {
            Ok(o) => o.borrow().inner == self.inner,
            Err(_) => false,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "SearchTree(roots={}, nodes={}, seed={}, max_nodes={})",
            self.inner.roots().len(),
            self.inner.len(),
            self.inner.seed(),
            self.inner.max_nodes()
        )
    }
}

/// Vote per problem over canonical answers (`answers[p]` lists problem p's answers, None = no answer).
/// Returns `(index, weight, count)` arrays; `index` is the flat position of the winner's first vote.
#[pyfunction]
#[pyo3(name = "_vote", signature = (answers, *, weights = None, complexity = None, top = None))]
#[allow(clippy::type_complexity)]
fn vote_py<'py>(
    py: Python<'py>,
    answers: &Bound<'py, PyAny>,
    weights: Option<&Bound<'py, PyAny>>,
    complexity: Option<&Bound<'py, PyAny>>,
    top: Option<i64>,
) -> PyRes<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<i64>>)> {
    if answers.is_instance_of::<PyString>() {
        return Err(invalid_type("answers", "must be a sequence of sequences of str, got str"));
    }
    // borrow the UTF-8 of each Python str (no copy for the common compact strings)
    let groups: Vec<Bound<'py, PyAny>> = answers
        .try_iter()
        .map_err(|_| invalid_type("answers", "must be a sequence of sequences"))?
        .collect::<PyResult<_>>()?;
    let mut items: Vec<Bound<'py, PyAny>> = Vec::new();
    let mut offsets = Vec::with_capacity(groups.len() + 1);
    offsets.push(0i64);
    for (g, grp) in groups.iter().enumerate() {
        if let Ok(list) = grp.cast::<PyList>() {
            items.extend(list.iter());
        } else {
            if grp.is_instance_of::<PyString>() {
                return Err(invalid_type(
                    "answers",
                    format!("answers[{g}] must be a sequence of str, got str"),
                ));
            }
            let it = grp
                .try_iter()
                .map_err(|_| invalid_type("answers", format!("answers[{g}] is not a sequence")))?;
            for x in it {
                items.push(x?);
            }
        }
        offsets.push(items.len() as i64);
    }
    let mut views: Vec<Option<&str>> = Vec::with_capacity(items.len());
    for (i, x) in items.iter().enumerate() {
        if x.is_none() {
            views.push(None);
        } else {
            let s = x.cast::<PyString>().map_err(|_| {
                let t = x.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
                invalid_type("answers", format!("answer {i} must be str or None, got {t}"))
            })?;
            views.push(Some(s.to_str()?));
        }
    }
    let weights = weights.map(|w| f64_vec(w, "weights")).transpose()?;
    let complexity = complexity.map(|c| f64_vec(c, "complexity")).transpose()?;
    let top = match top {
        Some(t) if t < 0 => return Err(invalid("top", format!("must be >= 1, got {t}"))),
        Some(t) => Some(t as usize),
        None => None,
    };
    let w = search::vote(&views, weights.as_deref(), &offsets, complexity.as_deref(), top)?;
    Ok((
        i64_out(py, w.iter().map(|x| x.index)),
        w.iter().map(|x| x.weight).collect::<Vec<f64>>().into_pyarray(py),
        i64_out(py, w.iter().map(|x| x.count as i64)),
    ))
}

/// Register this area's classes and functions on the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySearchTree>()?;
    m.add_function(wrap_pyfunction!(vote_py, m)?)?;
    Ok(())
}
