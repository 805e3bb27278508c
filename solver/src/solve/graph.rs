//! The shape of a solve: which vertices the target needs, who waits for
//! whom, and the ready queue.

use std::collections::{BTreeSet, VecDeque};

use super::error::Error;
use crate::llb::{Definition, LayerSource, VertexId};

/// The vertices the target needs: the ancestors of its output and of its
/// history entries' layers.
pub(crate) fn needed(def: &Definition) -> Vec<bool> {
    let mut needed = vec![false; def.vertices.len()];
    let mut stack: Vec<VertexId> = Vec::new();
    let st = def.target_stage();
    if let Some(o) = st.output {
        stack.push(o.vertex);
    }
    for l in &st.layers {
        if let LayerSource::Vertex(o) = l {
            stack.push(o.vertex);
        }
    }
    while let Some(v) = stack.pop() {
        if std::mem::replace(&mut needed[v], true) {
            continue;
        }
        stack.extend(def.vertices[v].inputs.iter().map(|o| o.vertex));
    }
    needed
}

/// Who depends on whom, among the needed vertices.
pub(crate) struct Deps {
    /// For each vertex, the needed vertices that read it.
    pub(crate) dependents: Vec<Vec<VertexId>>,
    /// For each needed vertex, how many distinct inputs it waits for.
    pub(crate) waits: Vec<usize>,
    /// How many vertices are needed.
    pub(crate) total: usize,
    /// Which vertices are needed.
    pub(crate) needed: Vec<bool>,
}

impl Deps {
    pub(crate) fn new(def: &Definition, needed: &[bool]) -> Deps {
        let n = def.vertices.len();
        let mut dependents = vec![Vec::new(); n];
        let mut waits = vec![0; n];
        for (v, vx) in def.vertices.iter().enumerate() {
            if !needed[v] {
                continue;
            }
            let distinct: BTreeSet<VertexId> = vx.inputs.iter().map(|o| o.vertex).collect();
            waits[v] = distinct.len();
            for i in distinct {
                dependents[i].push(v);
            }
        }
        Deps {
            dependents,
            waits,
            total: needed.iter().filter(|x| **x).count(),
            needed: needed.to_vec(),
        }
    }
}

/// The scheduler's mutable state (under the solver's lock).
pub(crate) struct Sched {
    /// Vertices whose inputs are all done, in the order they became ready.
    pub(crate) ready: VecDeque<VertexId>,
    remaining: Vec<usize>,
    finished: usize,
    total: usize,
    /// The first error; workers stop taking work once it is set.
    pub(crate) failed: Option<Error>,
}

impl Sched {
    pub(crate) fn new(deps: &Deps) -> Sched {
        let ready = deps
            .waits
            .iter()
            .enumerate()
            .filter(|(v, w)| **w == 0 && is_needed(deps, *v))
            .map(|(v, _)| v)
            .collect();
        Sched {
            ready,
            remaining: deps.waits.clone(),
            finished: 0,
            total: deps.total,
            failed: None,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished == self.total
    }

    /// Marks `v` done and queues the dependents it was the last input of.
    pub(crate) fn finish(&mut self, v: VertexId, deps: &Deps) {
        self.finished += 1;
        for &d in &deps.dependents[v] {
            self.remaining[d] -= 1;
            if self.remaining[d] == 0 {
                self.ready.push_back(d);
            }
        }
    }
}

/// Vertices the target does not need also have no waits; skip them.
fn is_needed(deps: &Deps, v: VertexId) -> bool {
    deps.needed.get(v).copied().unwrap_or(false)
}

/// The stage a vertex belongs to, from its progress name
/// (`[build 2/5] RUN …` → `build`); `None` for unnamed single stages and
/// internal vertices.
pub(crate) fn stage_of_name(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('[')?.split(']').next()?;
    let (stage, pos) = inner.rsplit_once(' ')?;
    if stage == "internal" || !pos.contains('/') {
        return None;
    }
    Some(stage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names() {
        assert_eq!(stage_of_name("[build 2/5] RUN make"), Some("build"));
        assert_eq!(stage_of_name("[stage-0 1/2] FROM x"), Some("stage-0"));
        assert_eq!(stage_of_name("[2/5] RUN make"), None);
        assert_eq!(stage_of_name("[internal] load build context"), None);
    }
}
