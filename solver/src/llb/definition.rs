//! Vertices, the definition that holds them, and the builder that assigns
//! stable digests as vertices are added.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::digest::{DIGEST_VERSION, canonical};
use super::{Digest, Image, LayerSource, Op, Output};

/// Index of a vertex in [`Definition::vertices`].
pub type VertexId = usize;

/// One node of the build graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    /// What the vertex does.
    pub op: Op,
    /// The outputs it reads; ops refer to them by position in this list.
    pub inputs: Vec<Output>,
    /// sha256 over the canonical form of `op` and the digests (and output
    /// indices) of `inputs`. Not over `name` or `lines`.
    pub digest: Digest,
    /// Progress label, e.g. `[build 2/5] RUN make` (not part of the digest).
    pub name: String,
    /// First and last Dockerfile line of the instruction that made it, if
    /// any (not part of the digest).
    pub lines: Option<(u32, u32)>,
}

#[derive(Serialize)]
struct DigestInput<'a> {
    version: &'static str,
    op: &'a Op,
    inputs: Vec<(&'a Digest, u32)>,
}

impl Vertex {
    /// Computes the digest of `op` reading `inputs` whose vertices have the
    /// digests `input_digests` (same order).
    pub fn compute_digest(op: &Op, inputs: &[Output], input_digests: &[&Digest]) -> Digest {
        let inputs = input_digests
            .iter()
            .zip(inputs)
            .map(|(d, o)| (*d, o.index))
            .collect();
        Digest::sha256(&canonical(&DigestInput {
            version: DIGEST_VERSION,
            op,
            inputs,
        }))
    }
}

/// What one compiled stage produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageResult {
    /// Stage name (`FROM ... AS name`), lower-cased; `None` if unnamed.
    pub name: Option<String>,
    /// Position of the stage in the Dockerfile (0-based).
    pub index: usize,
    /// The stage's final filesystem; `None` is an empty one (scratch).
    pub output: Option<Output>,
    /// The base image reference the stage's bottom layers come from
    /// ([`LayerSource::Base`] entries), if it starts from a registry image.
    pub base_image: Option<String>,
    /// The image config and history the stage accumulated.
    pub image: Image,
    /// One entry per `image.history` entry: where its layer comes from.
    pub layers: Vec<LayerSource>,
}

/// A compiled build: the graph, and the result of every compiled stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// All vertices, inputs before the vertices that read them.
    pub vertices: Vec<Vertex>,
    /// The stages that were compiled (the target and what it needs), in
    /// Dockerfile order.
    pub stages: Vec<StageResult>,
    /// Index into `stages` of the target stage.
    pub target: usize,
}

impl Definition {
    /// The target stage's result.
    pub fn target_stage(&self) -> &StageResult {
        &self.stages[self.target]
    }

    /// The target's final filesystem (`None`: empty).
    pub fn output(&self) -> Option<Output> {
        self.target_stage().output
    }

    /// The vertex an output belongs to.
    pub fn vertex(&self, output: Output) -> &Vertex {
        &self.vertices[output.vertex]
    }

    /// Checks the structural invariants and recomputes every digest.
    pub fn verify(&self) -> Result<(), String> {
        for (i, v) in self.vertices.iter().enumerate() {
            if let Some(bad) = v.inputs.iter().find(|o| o.vertex >= i) {
                return Err(format!(
                    "vertex {i} reads vertex {} which does not precede it",
                    bad.vertex
                ));
            }
            let digests: Vec<&Digest> = v
                .inputs
                .iter()
                .map(|o| &self.vertices[o.vertex].digest)
                .collect();
            if Vertex::compute_digest(&v.op, &v.inputs, &digests) != v.digest {
                return Err(format!("vertex {i} has a wrong digest"));
            }
        }
        Ok(())
    }
}

/// Adds vertices in topological order, computing digests as it goes and
/// reusing an existing vertex when an identical one (same digest) is added
/// again.
#[derive(Debug, Default, Clone)]
pub struct DefinitionBuilder {
    vertices: Vec<Vertex>,
    by_digest: HashMap<Digest, VertexId>,
    dry: bool,
}

impl DefinitionBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that skips hashing: every vertex gets a placeholder digest
    /// and nothing is deduplicated. For trial runs whose graph is thrown
    /// away; its definitions do not pass [`Definition::verify`].
    pub fn dry() -> Self {
        DefinitionBuilder {
            dry: true,
            ..Self::default()
        }
    }

    /// Adds a vertex reading `inputs` (which must all exist already) and
    /// returns its output 0. An identical vertex is reused.
    pub fn add(
        &mut self,
        op: Op,
        inputs: Vec<Output>,
        name: impl Into<String>,
        lines: Option<(u32, u32)>,
    ) -> Output {
        if self.dry {
            self.vertices.push(Vertex {
                op,
                inputs,
                digest: Digest::from_string(format!("dry:{}", self.vertices.len())),
                name: name.into(),
                lines,
            });
            return Output::of(self.vertices.len() - 1);
        }
        let digests: Vec<&Digest> = inputs
            .iter()
            .map(|o| &self.vertices[o.vertex].digest)
            .collect();
        let digest = Vertex::compute_digest(&op, &inputs, &digests);
        if let Some(&i) = self.by_digest.get(&digest) {
            return Output::of(i);
        }
        self.by_digest.insert(digest.clone(), self.vertices.len());
        self.vertices.push(Vertex {
            op,
            inputs,
            digest,
            name: name.into(),
            lines,
        });
        Output::of(self.vertices.len() - 1)
    }

    /// The vertices added so far.
    pub fn vertices(&self) -> &[Vertex] {
        &self.vertices
    }

    /// Finishes the definition.
    pub fn finish(self, stages: Vec<StageResult>, target: usize) -> Definition {
        Definition {
            vertices: self.vertices,
            stages,
            target,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llb::{ImageSource, LocalSource, Merge, Platform};

    fn image(r: &str) -> Op {
        Op::Image(ImageSource {
            reference: r.into(),
            platform: Platform::parse("linux/amd64").unwrap(),
        })
    }

    fn local() -> Op {
        Op::Local(LocalSource {
            name: "context".into(),
            include_patterns: vec![],
            exclude_patterns: vec![],
        })
    }

    #[test]
    fn digests_do_not_depend_on_position_and_duplicates_are_shared() {
        let mut a = DefinitionBuilder::new();
        let ia = a.add(image("x"), vec![], "a", None);
        let la = a.add(local(), vec![], "", None);
        let ma = a.add(
            Op::Merge(Merge {
                inputs: vec![Some(0), Some(1)],
            }),
            vec![ia, la],
            "",
            None,
        );
        let mut b = DefinitionBuilder::new();
        let lb = b.add(local(), vec![], "", None);
        let ib = b.add(image("x"), vec![], "other name", Some((1, 1)));
        let mb = b.add(
            Op::Merge(Merge {
                inputs: vec![Some(0), Some(1)],
            }),
            vec![ib, lb],
            "",
            None,
        );
        assert_eq!(
            a.vertices()[ma.vertex].digest,
            b.vertices()[mb.vertex].digest
        );
        assert_eq!(
            a.add(image("x"), vec![], "again", None),
            ia,
            "identical vertex reused"
        );
        let swapped = b.add(
            Op::Merge(Merge {
                inputs: vec![Some(0), Some(1)],
            }),
            vec![lb, ib],
            "",
            None,
        );
        assert_ne!(
            b.vertices()[swapped.vertex].digest,
            b.vertices()[mb.vertex].digest
        );
    }

    #[test]
    fn verify_catches_bad_order_and_digests() {
        let mut b = DefinitionBuilder::new();
        let i = b.add(image("x"), vec![], "", None);
        b.add(
            Op::Merge(Merge {
                inputs: vec![Some(0)],
            }),
            vec![i],
            "",
            None,
        );
        let mut d = b.finish(vec![], 0);
        d.verify().unwrap();
        let mut bad = d.clone();
        bad.vertices[0].op = image("y");
        assert!(bad.verify().is_err());
        d.vertices.swap(0, 1);
        assert!(d.verify().is_err());
    }
}
