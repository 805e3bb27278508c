//! Delta copy: redo "the same COPY" after its sources changed by writing
//! only what differs, as an overlay layer on top of the previous result.
//!
//! Contract: `prev` is the manifest returned by the copy being redone, made
//! on the same base (same destination root before the copy, same options).
//! The new copy is planned against that base, compared entry by entry with
//! `prev`, and only new or changed entries are written into `upper` (a fresh,
//! empty directory in overlayfs upperdir format), with the directories above
//! them; paths of `prev` that the new copy no longer produces become
//! whiteouts (0:0 character devices). Mounting `upper` over the previous
//! result's layers gives exactly what a full copy onto the base gives. A
//! change of mtime alone counts as a change (the layer must match a full
//! copy). Archives extracted by ADD are not itemised: such copies return
//! [`Error::DeltaUnsupported`] and the caller copies in full.

use std::collections::{HashMap, HashSet};

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps};

use super::copy::{
    Action, CopyOptions, DeferredDigests, Kind, Manifest, Plan, PlanEntry, execute, plan_copy,
};
use super::root::{RootDir, split_parent};
use super::{Error, Result};
use crate::contenthash::{Selection, SourceTree};

/// What a delta copy did.
#[derive(Debug, Clone)]
pub struct DeltaResult {
    /// The manifest of the new copy (as a full copy would return it).
    pub manifest: Manifest,
    /// Entries written into `upper` (new or changed, not counting parents).
    pub written: usize,
    /// Whiteouts created.
    pub deleted: usize,
    /// The file digests `manifest` still lacks (see
    /// [`CopyOptions::defer_file_digests`]).
    pub deferred: DeferredDigests,
}

fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Plans the copy against `base` and writes only its difference from `prev`
/// into `upper`. See the module documentation for the contract.
pub fn delta_copy(
    tree: &SourceTree,
    sel: &Selection,
    opts: &CopyOptions,
    base: &RootDir,
    prev: &Manifest,
    upper: &RootDir,
) -> Result<DeltaResult> {
    // Comparing with `prev` needs the digests now.
    let hashing;
    let opts = if opts.defer_file_digests && !prev.entries.is_empty() {
        hashing = CopyOptions {
            defer_file_digests: false,
            ..opts.clone()
        };
        &hashing
    } else {
        opts
    };
    let plan = plan_copy(tree, sel, opts, base)?;
    if plan.entries.iter().any(|e| e.m.kind == Kind::Archive)
        || prev.entries.iter().any(|e| e.kind == Kind::Archive)
    {
        return Err(Error::DeltaUnsupported(
            "the copy extracts an archive".into(),
        ));
    }
    let prev_by_path: HashMap<&str, &super::ManifestEntry> =
        prev.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut changed: Vec<bool> = plan
        .entries
        .iter()
        .map(|e| prev_by_path.get(e.m.path.as_str()) != Some(&&e.m))
        .collect();
    // Hard links are rewritten as a group when any member changed.
    let index: HashMap<&str, usize> = plan
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.m.path.as_str(), i))
        .collect();
    for (i, e) in plan.entries.iter().enumerate() {
        if e.m.kind == Kind::Hardlink
            && let Some(&t) = e.m.link.as_deref().and_then(|l| index.get(l))
            && (changed[i] || changed[t])
        {
            changed[i] = true;
            changed[t] = true;
        }
    }
    let new_paths: HashSet<&str> = plan.entries.iter().map(|e| e.m.path.as_str()).collect();
    let removed: HashSet<&str> = prev
        .entries
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| !new_paths.contains(p))
        .collect();
    let whiteouts: Vec<&str> = {
        let mut w: Vec<&str> = removed
            .iter()
            .copied()
            .filter(|p| !ancestors(p).any(|a| removed.contains(a)))
            .collect();
        w.sort();
        w
    };

    // Directories needed in the upper layer: ancestors of everything written.
    let mut needed: HashSet<String> = HashSet::new();
    for (i, e) in plan.entries.iter().enumerate() {
        if changed[i] {
            needed.extend(ancestors(&e.m.path).map(str::to_string));
        }
    }
    for w in &whiteouts {
        needed.extend(ancestors(w).map(str::to_string));
    }

    // Ancestors outside the plan are copied up from the base as they are.
    let mut outside: Vec<&String> = needed
        .iter()
        .filter(|p| !index.contains_key(p.as_str()))
        .collect();
    outside.sort();
    let mut base_dirs = Vec::new();
    for p in outside {
        let st = base.resolve(p)?.map(|(_, st)| st);
        let (parent, _) = split_parent(p);
        let st = st.ok_or_else(|| Error::NotADirectory {
            path: base.display(p),
        })?;
        upper.mkdir_all(p, st.st_mode & 0o7777, Some((st.st_uid, st.st_gid)), None)?;
        let _ = parent;
        base_dirs.push((p.clone(), st));
    }

    let mut entries: Vec<PlanEntry> = Vec::new();
    let mut written = 0;
    for (i, e) in plan.entries.iter().enumerate() {
        let as_parent = e.m.kind == Kind::Dir && needed.contains(&e.m.path);
        if !changed[i] && !as_parent {
            continue;
        }
        if changed[i] {
            written += 1;
        }
        let mut e = e.clone();
        e.action = Action::Create;
        e.replace = false;
        entries.push(e);
    }
    let sub = Plan { entries };
    execute(&sub, upper)?;

    for w in &whiteouts {
        let (parent, name) = split_parent(w);
        let dir = upper.open_dir(parent)?;
        rustix::fs::mknodat(
            &dir,
            name,
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|e| Error::io(&upper.display(w), e.into()))?;
    }
    // Copied-up ancestors keep the base's times (children were written into them).
    for (p, st) in base_dirs.iter().rev() {
        let (parent, name) = split_parent(p);
        let dir = upper.open_dir(parent)?;
        let t = Timestamps {
            last_access: Timespec {
                tv_sec: st.st_atime,
                tv_nsec: st.st_atime_nsec as _,
            },
            last_modification: Timespec {
                tv_sec: st.st_mtime,
                tv_nsec: st.st_mtime_nsec as _,
            },
        };
        rustix::fs::utimensat(&dir, name, &t, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io(&upper.display(p), e.into()))?;
    }
    Ok(DeltaResult {
        manifest: plan.manifest(),
        deferred: plan.deferred(),
        written,
        deleted: whiteouts.len(),
    })
}
