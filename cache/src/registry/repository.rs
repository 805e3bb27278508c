//! One repository of one registry: manifests (get, head, put) and blob
//! existence. Downloads are in [`super::blob_reader`], uploads in
//! [`super::upload`].

use std::io::Read;

use ureq::http::header;

use super::client::{Client, Req, ReqBody, error_message, read_small};
use super::error::{Error, Result};
use crate::digest::Digest;
use crate::images::METADATA_LIMIT;
use crate::records::{Descriptor, media};
use crate::reference::ImageRef;

/// Every manifest media type kiln can read, for `Accept`.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// A repository (`localhost:5000` + `team/app`) and the access we need.
pub struct Repository<'c> {
    pub(crate) client: &'c Client,
    registry: String,
    name: String,
    scopes: Vec<String>,
    what: String,
}

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The bytes, exactly (their sha256 is the digest).
    pub bytes: Vec<u8>,
    /// From `Content-Type`, else the JSON's `mediaType`.
    pub media_type: String,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

impl FetchedManifest {
    /// The descriptor of this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
        }
    }

    /// Whether it is an index (OCI index or docker manifest list).
    pub fn is_index(&self) -> bool {
        self.media_type == media::OCI_INDEX || self.media_type == media::DOCKER_MANIFEST_LIST
    }
}

impl Client {
    /// A handle for pulling from `r`'s repository.
    pub fn repository(&self, r: &ImageRef) -> Repository<'_> {
        Repository {
            client: self,
            registry: r.registry().to_string(),
            name: r.repository().to_string(),
            scopes: vec![format!("repository:{}:pull", r.repository())],
            what: format!("pull {}", r.name()),
        }
    }

    /// A handle for pushing to `r`'s repository; blobs may be mounted
    /// from the repositories `mount_from` (same registry).
    pub fn repository_for_push(&self, r: &ImageRef, mount_from: &[String]) -> Repository<'_> {
        let mut scopes = vec![format!("repository:{}:pull,push", r.repository())];
        for m in mount_from {
            if m != r.repository() {
                scopes.push(format!("repository:{m}:pull"));
            }
        }
        Repository {
            client: self,
            registry: r.registry().to_string(),
            name: r.repository().to_string(),
            scopes,
            what: format!("push {}", r.name()),
        }
    }
}

impl<'c> Repository<'c> {
    /// The registry, as in references.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `registry/name`, for messages.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.registry, self.name)
    }

    /// `BASE/v2/NAME/TAIL`.
    pub(crate) fn url(&self, tail: &str) -> String {
        format!(
            "{}/v2/{}/{tail}",
            self.client.base_url(&self.registry),
            self.name
        )
    }

    /// An absolute URL for a `Location` header (often relative).
    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.client.base_url(&self.registry))
        }
    }

    pub(crate) fn req(&self, method: &'static str, url: String) -> Req<'_> {
        Req::new(method, url, &self.registry, &self.scopes, &self.what)
    }

    /// How to write `reference` (tag or digest) after the name.
    fn manifest_label(&self, reference: &str) -> String {
        if reference.starts_with("sha256:") {
            format!("{}@{reference}", self.full_name())
        } else {
            format!("{}:{reference}", self.full_name())
        }
    }

    /// Fetches a manifest or index by tag or digest. The bytes are
    /// verified against the digest when fetched by digest, and against
    /// `Docker-Content-Digest` when the registry sends one.
    pub fn get_manifest(&self, reference: &str) -> Result<FetchedManifest> {
        let label = self.manifest_label(reference);
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.client.send(
            self.req("GET", url.clone())
                .header("accept", MANIFEST_ACCEPT),
        )?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(self.error_for("GET", &url, &format!("manifest for {label}"), resp));
        }
        let content_type = header_str(&resp, header::CONTENT_TYPE.as_str());
        let sent_digest = header_str(&resp, "docker-content-digest");
        let what = format!("manifest for {label}");
        let bytes = read_small(resp, &what, METADATA_LIMIT)?;
        let digest = Digest::of(&bytes);
        let want = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            sent_digest.filter(|d| d.starts_with("sha256:"))
        };
        if let Some(want) = want
            && want != digest.as_str()
        {
            return Err(Error::Store(crate::error::Error::DigestMismatch {
                what,
                expected: want,
                actual: digest.to_string(),
            }));
        }
        let media_type = media_type_of(content_type.as_deref(), &bytes);
        if media_type.starts_with("application/vnd.docker.distribution.manifest.v1") {
            return Err(Error::invalid(
                what,
                format!(
                    "{media_type} (Docker image manifest schema 1) is not supported; \
                     push the image again with a current tool"
                ),
            ));
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The descriptor of a manifest if it exists (`HEAD`).
    pub fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.client.send(
            self.req("HEAD", url.clone())
                .header("accept", MANIFEST_ACCEPT),
        )?;
        match resp.status().as_u16() {
            200 => {
                let digest =
                    header_str(&resp, "docker-content-digest").and_then(|d| Digest::parse(&d).ok());
                let size = header_str(&resp, "content-length").and_then(|s| s.parse().ok());
                let media_type = header_str(&resp, "content-type").unwrap_or_default();
                match (digest, size) {
                    (Some(digest), Some(size)) => Ok(Some(Descriptor {
                        media_type,
                        digest,
                        size,
                    })),
                    // Without the headers, fetch it to know.
                    _ => self.get_manifest(reference).map(|m| Some(m.descriptor())),
                }
            }
            404 => Ok(None),
            _ => Err(self.error_for(
                "HEAD",
                &url,
                &format!("manifest for {}", self.manifest_label(reference)),
                resp,
            )),
        }
    }

    /// Uploads a manifest (or index) under `reference` (a tag, or its
    /// digest); returns its digest.
    pub fn put_manifest(&self, reference: &str, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.client.send(
            self.req("PUT", url.clone())
                .header("content-type", media_type)
                .body(ReqBody::Bytes(bytes)),
        )?;
        let status = resp.status().as_u16();
        if status != 201 && status != 200 && status != 202 {
            return Err(self.error_for(
                "PUT",
                &url,
                &format!("manifest {}", self.manifest_label(reference)),
                resp,
            ));
        }
        if let Some(sent) = header_str(&resp, "docker-content-digest")
            && sent != digest.as_str()
        {
            return Err(Error::invalid(
                format!("manifest {}", self.manifest_label(reference)),
                format!("the registry stored it as {sent}, not {digest}"),
            ));
        }
        Ok(digest)
    }

    /// The size of a blob if the repository has it (`HEAD`).
    pub fn blob_exists(&self, d: &Digest) -> Result<Option<u64>> {
        let url = self.url(&format!("blobs/{d}"));
        let resp = self.client.send(self.req("HEAD", url.clone()))?;
        match resp.status().as_u16() {
            200 => Ok(Some(
                header_str(&resp, "content-length")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(self.error_for("HEAD", &url, &format!("blob {d}"), resp)),
        }
    }

    /// A small blob (config, cache metadata) in memory, verified.
    pub fn fetch_blob_bytes(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let mut r = self.fetch_blob(d, None)?;
        let mut out = Vec::new();
        r.by_ref()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::invalid(format!("blob {d} of {}", self.full_name()), e.to_string())
            })?;
        if out.len() as u64 > limit {
            return Err(Error::invalid(
                format!("blob {d} of {}", self.full_name()),
                format!("larger than the {limit}-byte limit"),
            ));
        }
        let got = Digest::of(&out);
        if &got != d {
            return Err(Error::Store(crate::error::Error::DigestMismatch {
                what: format!("blob of {}", self.full_name()),
                expected: d.to_string(),
                actual: got.to_string(),
            }));
        }
        Ok(out)
    }

    /// Turns a failed response into an error about `what`.
    pub(crate) fn error_for(
        &self,
        method: &str,
        url: &str,
        what: &str,
        resp: ureq::http::Response<ureq::Body>,
    ) -> Error {
        match resp.status().as_u16() {
            404 => Error::NotFound {
                what: what.to_string(),
                message: if method == "HEAD" {
                    String::new()
                } else {
                    error_message(resp)
                },
            },
            403 => Error::Unauthorized {
                registry: self.registry.clone(),
                what: self.what.clone(),
                message: format!("access to {what} denied: {}", error_message(resp)),
            },
            _ => self.client.status_error(method, url, resp),
        }
    }
}

/// A response header as a string.
pub(crate) fn header_str(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The media type of a manifest: the header unless it is generic, else
/// the JSON's `mediaType`, else guessed from its shape.
fn media_type_of(content_type: Option<&str>, bytes: &[u8]) -> String {
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| c.starts_with("application/vnd."));
    if let Some(ct) = ct {
        return ct;
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str()) {
        return mt.to_string();
    }
    if v.get("manifests").is_some() {
        media::OCI_INDEX.to_string()
    } else {
        media::OCI_MANIFEST.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            media_type_of(Some("application/vnd.oci.image.index.v1+json"), b"{}"),
            media::OCI_INDEX
        );
        assert_eq!(
            media_type_of(
                Some("application/json"),
                br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#
            ),
            media::DOCKER_MANIFEST
        );
        assert_eq!(
            media_type_of(None, br#"{"manifests":[]}"#),
            media::OCI_INDEX
        );
        assert_eq!(
            media_type_of(None, br#"{"layers":[]}"#),
            media::OCI_MANIFEST
        );
    }
}
