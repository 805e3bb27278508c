//! Computing digests of source entries: files (header + content), symlinks
//! and other non-directories (header only), directories (a Merkle hash over
//! their sorted entries), in parallel, through the stat cache.

use std::io::Read;
use std::sync::Arc;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::header::header_bytes;
use super::statcache::StatKey;
use super::tree::{Node, SourceTree, read_file_xattrs};
use super::{Digest, Error, Result};

impl SourceTree {
    /// The content digest of a node: for a file, BLAKE3 of its header then
    /// its content; for a directory, the Merkle hash of its own header and its
    /// entries (each as `\0name` followed by the entry's digest, in byte
    /// order of names); for anything else its header. Symlinks are not
    /// followed. Files are hashed in parallel, consulting the stat cache.
    pub fn digest(&self, node: &Arc<Node>) -> Result<Digest> {
        if let Some(d) = node.digest.get() {
            return Ok(d.clone());
        }
        self.prefetch(std::slice::from_ref(node))?;
        self.merkle(node)
    }

    /// The digest of a node's own header (for a directory: without its
    /// contents). The build context's root counts as the empty string when
    /// [`SourceOptions::empty_root_header`](super::SourceOptions) is set.
    pub fn header_digest(&self, node: &Node) -> Result<Digest> {
        if let Some(d) = node.header.get() {
            return Ok(d.clone());
        }
        let d = if node.rel().is_empty() && self.opts.empty_root_header {
            Digest::empty()
        } else {
            let xattrs = self.xattrs(node)?;
            let (uid, gid) = self.owner(node);
            Digest::of(&header_bytes(
                node.meta(),
                uid,
                gid,
                node.link_target(),
                &xattrs,
            ))
        };
        Ok(node.header.get_or_init(|| d).clone())
    }

    /// Makes sure every regular file under `nodes` has its digest: looks them
    /// up in the stat cache in one batch, hashes the rest in parallel and
    /// stores them back.
    pub fn prefetch(&self, nodes: &[Arc<Node>]) -> Result<()> {
        let files: Vec<Arc<Node>> = nodes
            .par_iter()
            .map(|n| self.collect_unhashed(n))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        if files.is_empty() {
            return Ok(());
        }
        let keys: Vec<StatKey> = files
            .iter()
            .map(|n| StatKey::new(&self.disk_path(n), n.meta(), self.zero_owner()))
            .collect();
        let cached = self.opts.stat_cache.get_many(&keys);
        let misses: Vec<(usize, &Arc<Node>)> = files
            .iter()
            .enumerate()
            .filter(|(i, n)| match &cached[*i] {
                Some(d) => {
                    let _ = n.digest.set(d.clone());
                    false
                }
                None => true,
            })
            .collect();
        let computed: Vec<(StatKey, Digest)> = misses
            .par_iter()
            .map(|(i, n)| {
                let d = self.hash_file(n)?;
                let _ = n.digest.set(d.clone());
                Ok((keys[*i].clone(), d))
            })
            .collect::<Result<_>>()?;
        self.opts.stat_cache.put_many(&computed);
        Ok(())
    }

    fn collect_unhashed(&self, node: &Arc<Node>) -> Result<Vec<Arc<Node>>> {
        if node.digest.get().is_some() {
            return Ok(Vec::new());
        }
        if node.meta().is_file() {
            return Ok(vec![node.clone()]);
        }
        if !node.meta().is_dir() {
            return Ok(Vec::new());
        }
        let children = self.children(node)?;
        Ok(children
            .par_iter()
            .map(|c| self.collect_unhashed(c))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    fn hash_file(&self, node: &Node) -> Result<Digest> {
        let mut h = blake3::Hasher::new();
        let (uid, gid) = self.owner(node);
        if node.meta().size == 0 {
            let xattrs = self.xattrs(node)?;
            h.update(&header_bytes(node.meta(), uid, gid, None, &xattrs));
            return Ok(Digest::from_blake3(h));
        }
        // Opened first, so that its xattrs are read without another path
        // lookup.
        let path = self.disk_path(node);
        let mut f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let xattrs = read_file_xattrs(&f, &path)?;
        h.update(&header_bytes(node.meta(), uid, gid, None, &xattrs));
        // Sized to the file: zeroing 256 KiB for each of 20,000 small
        // files cost more than hashing them.
        let mut buf = vec![0u8; (node.meta().size as usize).clamp(1, 256 * 1024)];
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(&path, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(Digest::from_blake3(h))
    }

    fn merkle(&self, node: &Arc<Node>) -> Result<Digest> {
        if let Some(d) = node.digest.get() {
            return Ok(d.clone());
        }
        let d = if node.meta().is_dir() {
            let children = self.children(node)?;
            let digests: Vec<Digest> = children
                .par_iter()
                .map(|c| self.merkle(c))
                .collect::<Result<_>>()?;
            let mut h = Sha256::new();
            h.update(b"\0");
            h.update(self.header_digest(node)?.as_str());
            for (c, d) in children.iter().zip(&digests) {
                h.update(b"\0");
                h.update(c.name());
                h.update(d.as_str());
            }
            Digest::from_hasher(h)
        } else if node.meta().is_file() {
            self.hash_file(node)?
        } else {
            self.header_digest(node)?
        };
        Ok(node.digest.get_or_init(|| d).clone())
    }
}
