//! Writing the tar of a lazy layer on demand ([`LayerMaterializer`]).
//!
//! A delta copy's image layer is the layer tar of the previous copy's
//! layers with the thin delta on top, diffed against the base. The solver
//! only hashes that tar (see `file::write_merged`) and records the layer
//! as lazy with a [`LayerRecipe`]; when something needs the bytes (save,
//! push, cache export, a later `FROM`), the store asks this materializer,
//! which merges the same stack of layer directories and writes the same
//! tar with the same writer and options — so the bytes, and the diffID
//! the store checks them against, are the same.

use std::io::{self, Write};
use std::path::PathBuf;

use cache::{LayerRecipe, Materialize, Store};

use super::error::Result;
use super::value::dirs;

/// Regenerates lazy layers' tars; install it with
/// [`Store::set_materializer`] wherever a store is opened.
#[derive(Debug, Clone, Default)]
pub struct LayerMaterializer;

/// Writes the layer tar of the merged view of `stack` (layer directories,
/// topmost first) against `lowers` to `w`.
pub(crate) fn write_stack_tar<W: Write>(
    stack: &[PathBuf],
    lowers: &[PathBuf],
    clamp_mtime: Option<i64>,
    w: W,
) -> Result<W> {
    let opts = executor::diff::DiffOptions { clamp_mtime };
    let (w, _) = executor::diff::write_stack_layer(stack, lowers, w, &opts)?;
    Ok(w)
}

impl Materialize for LayerMaterializer {
    fn write_tar(&self, store: &Store, recipe: &LayerRecipe, w: &mut dyn Write) -> io::Result<()> {
        let run = || -> Result<()> {
            let lowers = dirs(store, &recipe.lowers)?;
            let w = io::BufWriter::with_capacity(1 << 20, w);
            let mut w = match &recipe.own_dir {
                // A step's layer: the diff of its own directory, read as
                // it is (an overlay view would hide its whiteouts).
                Some(own) => {
                    let opts = executor::diff::DiffOptions {
                        clamp_mtime: recipe.clamp_mtime,
                    };
                    executor::diff::write_layer(&store.own_layer_dir(own)?, &lowers, w, &opts)?.0
                }
                None => {
                    write_stack_tar(&dirs(store, &recipe.stack)?, &lowers, recipe.clamp_mtime, w)?
                }
            };
            w.flush()
                .map_err(|e| super::error::Error::io("<layer tar>", e))
        };
        run().map_err(io::Error::other)
    }
}
