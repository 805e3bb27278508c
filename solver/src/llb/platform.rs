//! Target and build platforms (`os/arch[/variant]`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An OCI platform. Serialises with the OCI field names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// e.g. `v7` for `arm`; empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    /// The platform of the machine kiln runs on (`linux/<arch>`, with Go's
    /// architecture names).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = if arch == "arm64" {
            "v8"
        } else if arch == "arm" {
            "v7"
        } else {
            ""
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.into(),
        }
    }

    /// Parses `os[/arch[/variant]]` or a bare architecture, normalising the
    /// common aliases the way containerd's `platforms` package does
    /// (`x86_64`→`amd64`, `aarch64`→`arm64`, `armhf`→`arm/v7`, ...).
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            ));
        }
        let known_os = [
            "linux",
            "windows",
            "darwin",
            "freebsd",
            "netbsd",
            "openbsd",
            "solaris",
            "illumos",
            "android",
            "ios",
            "aix",
            "dragonfly",
            "plan9",
            "js",
            "wasip1",
        ];
        let (os, arch, variant) = match parts.as_slice() {
            [one] if known_os.contains(one) => (
                one.to_string(),
                Platform::host().architecture,
                String::new(),
            ),
            [one] => ("linux".to_string(), one.to_string(), String::new()),
            [os, arch] => (os.to_string(), arch.to_string(), String::new()),
            [os, arch, variant] => (os.to_string(), arch.to_string(), variant.to_string()),
            _ => unreachable!("length checked above"),
        };
        if !known_os.contains(&os.as_str()) {
            return Err(format!(
                "invalid platform {s:?}: unknown operating system {os:?}"
            ));
        }
        let (arch, variant) = normalize_arch(&arch, &variant);
        Ok(Platform {
            os,
            architecture: arch,
            variant,
        })
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (a, v) = match arch {
        "i386" => ("386", ""),
        "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { variant }),
        "aarch64" | "arm64" => (
            "arm64",
            if variant == "8" || variant == "v8" {
                ""
            } else {
                variant
            },
        ),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => (
            "arm",
            match variant {
                "" | "7" => "v7",
                "5" | "6" | "8" => return ("arm".into(), format!("v{variant}")),
                v => v,
            },
        ),
        other => (other, variant),
    };
    (a.to_string(), v.to_string())
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let p = Platform::parse("linux/x86_64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/armhf").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("plan10/amd64").is_err());
    }
}
