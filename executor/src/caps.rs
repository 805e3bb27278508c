//! Capabilities: docker's default set, and dropping to it.
//!
//! A sandboxed process keeps only the capabilities docker gives a
//! container by default. The rest leave the bounding set, so nothing run
//! later (a set-uid binary, a file with capabilities) can regain them. Root
//! gets the default set as effective and permitted; any other user gets
//! none (the kernel clears them on setuid, as in docker ≥ 20.10). The
//! inheritable and ambient sets are empty (CVE-2022-24769).

use rustix::thread::{CapabilitySet, CapabilitySets};

/// Docker's default capabilities.
pub(crate) fn docker_default() -> CapabilitySet {
    CapabilitySet::CHOWN
        | CapabilitySet::DAC_OVERRIDE
        | CapabilitySet::FSETID
        | CapabilitySet::FOWNER
        | CapabilitySet::MKNOD
        | CapabilitySet::NET_RAW
        | CapabilitySet::SETGID
        | CapabilitySet::SETUID
        | CapabilitySet::SETFCAP
        | CapabilitySet::SETPCAP
        | CapabilitySet::NET_BIND_SERVICE
        | CapabilitySet::SYS_CHROOT
        | CapabilitySet::KILL
        | CapabilitySet::AUDIT_WRITE
}

/// Removes every capability not in `keep` from the bounding set. Needs
/// CAP_SETPCAP, so it runs before the uid changes.
pub(crate) fn restrict_bounding_set(keep: CapabilitySet) -> std::io::Result<()> {
    for bit in 0..64u32 {
        let cap = CapabilitySet::from_bits_retain(1u64 << bit);
        if keep.contains(cap) {
            continue;
        }
        match rustix::thread::capability_is_in_bounding_set(cap) {
            Ok(true) => rustix::thread::remove_capability_from_bounding_set(cap)?,
            Ok(false) => {}
            // Past the kernel's last capability.
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sets the effective and permitted sets to `caps` (inheritable empty) and
/// clears the ambient set.
pub(crate) fn set_process_caps(caps: CapabilitySet) -> std::io::Result<()> {
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: caps,
            permitted: caps,
            inheritable: CapabilitySet::empty(),
        },
    )?;
    rustix::thread::clear_ambient_capability_set()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_matches_docker() {
        // 0x00000000a80425fb is what `docker run` shows as CapBnd.
        assert_eq!(docker_default().bits(), 0xa80425fb);
    }
}
