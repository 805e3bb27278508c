//! Platforms (`os/arch[/variant]`) and choosing one manifest from an
//! index, with containerd's normalisation of architecture names and
//! default variants (`arm64` = `arm64/v8`, `arm` = `arm/v7`, `amd64` =
//! `amd64/v1`).

use std::fmt;

use super::error::{Error, Result};

/// A platform as OCI indexes describe it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// OCI architecture name: `amd64`, `arm64`, `arm`, `386`, …
    pub architecture: String,
    /// `v7`, `v8`, … if any.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` (also `arch` alone, meaning linux), the
    /// form `--platform` takes. Architecture aliases (`x86_64`,
    /// `aarch64`) are normalised.
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = || {
            Error::InvalidArgument(format!(
                "invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| {
            p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        }) {
            return Err(bad());
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] if *arch != "linux" && *arch != "windows" => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(bad()),
        };
        let (architecture, variant) = normalize_arch(
            &arch.to_ascii_lowercase(),
            variant.map(|v| v.to_ascii_lowercase()),
        );
        Ok(Platform {
            os: os.to_ascii_lowercase(),
            architecture,
            variant,
        })
    }

    /// The platform of this machine (Linux only).
    pub fn host() -> Platform {
        let (architecture, variant) = normalize_arch(std::env::consts::ARCH, None);
        Platform {
            os: "linux".to_string(),
            architecture,
            variant,
        }
    }

    /// Whether an index entry (or a config) with this os/arch/variant
    /// runs as `self`: os and architecture equal; a variant only where
    /// both sides name one, after defaults (arm64 = v8, amd64 = v1,
    /// arm = v7).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let (arch, variant) = normalize_arch(architecture, variant.map(str::to_string));
        if os != self.os || arch != self.architecture {
            return false;
        }
        match (&self.variant, &variant) {
            (Some(want), Some(got)) => want == got,
            (Some(want), None) => default_variant(&arch) == Some(want.as_str()),
            (None, Some(got)) => default_variant(&arch).is_none_or(|d| d == got),
            (None, None) => true,
        }
    }
}

/// The variant an architecture has when none is written.
fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        "amd64" => Some("v1"),
        _ => None,
    }
}

/// Maps Go/uname names to OCI's and drops default variants.
fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    let (arch, variant) = match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64", variant),
        "aarch64" | "arm64" => ("arm64", variant),
        "i386" | "i686" | "386" => ("386", None),
        "armhf" | "armel" if variant.is_none() => (
            "arm",
            Some(if arch == "armhf" { "v7" } else { "v6" }.into()),
        ),
        "arm" => ("arm", variant),
        other => (other, variant),
    };
    let variant = variant.filter(|v| default_variant(arch) != Some(v.as_str()) || arch == "arm");
    // arm keeps its variant (v6 and v7 differ and both are common); for
    // arm64/amd64 the default variant is the same as none.
    (arch.to_string(), variant)
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let p = Platform::parse("linux/amd64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/x86_64").unwrap(), p);
        assert_eq!(Platform::parse("amd64").unwrap(), p);
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap(),
            Platform::parse("linux/arm64").unwrap()
        );
        assert_eq!(
            Platform::parse("linux/arm/v6").unwrap().to_string(),
            "linux/arm/v6"
        );
        for bad in ["", "linux/", "a/b/c/d", "linux/amd 64", "/amd64"] {
            let e = Platform::parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid platform"), "{bad}: {e}");
        }
    }

    #[test]
    fn matching_with_default_variants() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(arm64.matches("linux", "arm64", None));
        assert!(!arm64.matches("linux", "amd64", None));
        assert!(!arm64.matches("windows", "arm64", None));
        let armv7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(armv7.matches("linux", "arm", Some("v7")));
        assert!(armv7.matches("linux", "arm", None));
        assert!(!armv7.matches("linux", "arm", Some("v6")));
        let arm = Platform::parse("linux/arm").unwrap();
        assert!(arm.matches("linux", "arm", Some("v7")));
        assert!(!arm.matches("linux", "arm", Some("v6")));
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert!(host.matches("linux", std::env::consts::ARCH, None));
    }
}
