//! The operations a vertex can perform. Source ops read nothing from the
//! graph; [`Exec`], [`FileOp`] and [`Merge`] read the outputs listed in
//! their vertex's `inputs`, naming them by position in that list.

use serde::{Deserialize, Serialize};

use super::{Exec, FileOp, Platform};

/// What a vertex does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Op {
    /// The root filesystem of a registry image.
    Image(ImageSource),
    /// (A selection of) a local directory sent by the client: the build
    /// context, or a named context.
    Local(LocalSource),
    /// A file downloaded over HTTP(S) (`ADD https://...`).
    Http(HttpSource),
    /// A git repository checkout (`ADD git@...`, `ADD https://...git`).
    Git(GitSource),
    /// A process run in a sandbox on top of its input (`RUN`).
    Exec(Exec),
    /// File operations applied in order (`COPY`, `ADD`, `WORKDIR`, ...).
    File(FileOp),
    /// The layers of every input stacked in order (`COPY --link`).
    Merge(Merge),
}

impl Op {
    /// A short lower-case name of the op kind (`image`, `exec`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Image(_) => "image",
            Op::Local(_) => "local",
            Op::Http(_) => "http",
            Op::Git(_) => "git",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
            Op::Merge(_) => "merge",
        }
    }
}

/// A registry image, to be pulled (or found in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSource {
    /// The fully normalised reference, e.g. `docker.io/library/alpine:3.20`,
    /// with `@sha256:...` appended when the resolver pinned a digest.
    pub reference: String,
    /// The platform whose manifest to pick from an index.
    pub platform: Platform,
}

/// A local directory selected by include/exclude patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSource {
    /// `context` for the main build context; a named context otherwise.
    pub name: String,
    /// Only these paths (relative, cleaned, sorted; a directory includes
    /// everything below it) are needed. Empty means everything.
    pub include_patterns: Vec<String>,
    /// `.dockerignore` patterns, in file order, with moby/patternmatcher
    /// semantics (applied by whoever reads the directory).
    pub exclude_patterns: Vec<String>,
}

/// A file fetched over HTTP(S).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSource {
    /// The URL as written (after variable expansion).
    pub url: String,
    /// The name of the file in this vertex's output (the URL's basename, or
    /// `__unnamed__`).
    pub filename: String,
    /// `sha256:<hex>` the content must have (`ADD --checksum`), if any.
    pub checksum: Option<String>,
    /// File mode of the downloaded file (BuildKit: 0600).
    pub mode: u32,
}

/// A git checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSource {
    /// The remote, e.g. `https://github.com/moby/buildkit.git`.
    pub remote: String,
    /// Branch, tag or commit (`#ref`), empty for the default branch.
    pub reference: String,
    /// Sub-directory to keep (`#ref:subdir`), empty for the whole tree.
    pub subdir: String,
    /// Keep the `.git` directory (`ADD --keep-git-dir`).
    pub keep_git_dir: bool,
    /// Commit the checkout must resolve to (`ADD --checksum`), if any.
    pub checksum: Option<String>,
}

/// Stacks the layers of its inputs in order: `inputs[0]` at the bottom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merge {
    /// Input positions, bottom first. `None` is an empty layer.
    pub inputs: Vec<Option<usize>>,
}
