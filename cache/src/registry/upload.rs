//! Uploading blobs: `HEAD` first (skip what the registry has), a
//! cross-repository mount when a repository of the same registry is
//! known to hold the blob, then one `PUT` (monolithic) or a series of
//! `PATCH`es with `Content-Range` and a closing `PUT` (chunked, for
//! blobs larger than [`ClientOptions::chunk_size`]).
//!
//! Bodies are read from the file with `pread`, so a request is resent as
//! is after a retryable failure; an upload session the registry lost
//! (404, 416) is started again from scratch, once.
//!
//! [`ClientOptions::chunk_size`]: super::ClientOptions::chunk_size

use std::fs::File;

use super::client::ReqBody;
use super::error::{Error, Result};
use super::progress::{BlobOutcome, Event};
use super::repository::{Repository, header_str};
use crate::digest::Digest;
use crate::records::Descriptor;

/// Where an upload's bytes come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Bytes(&'a [u8]),
    File(&'a File),
}

impl Repository<'_> {
    /// Uploads the blob `desc` from `file` (which holds exactly its bytes)
    /// unless the repository has it; tries to mount it from each of
    /// `mount_from` first.
    pub fn push_blob_file(
        &self,
        file: &File,
        desc: &Descriptor,
        mount_from: &[String],
    ) -> Result<BlobOutcome> {
        self.push_blob(Source::File(file), desc, mount_from)
    }

    /// Uploads a small blob held in memory (a config, cache metadata);
    /// returns its descriptor and what happened.
    pub fn push_blob_bytes(
        &self,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(Descriptor, BlobOutcome)> {
        let desc = Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        };
        let outcome = self.push_blob(Source::Bytes(bytes), &desc, &[])?;
        Ok((desc, outcome))
    }

    fn push_blob(
        &self,
        src: Source<'_>,
        desc: &Descriptor,
        mount_from: &[String],
    ) -> Result<BlobOutcome> {
        if self.blob_exists(&desc.digest)?.is_some() {
            return Ok(BlobOutcome::AlreadyExists);
        }
        let mut location = None;
        let sources: Vec<&String> = mount_from.iter().filter(|f| *f != self.name()).collect();
        for (i, from) in sources.iter().enumerate() {
            match self.try_mount(&desc.digest, from)? {
                Mount::Mounted => return Ok(BlobOutcome::Mounted),
                Mount::Started(loc) if i + 1 == sources.len() => location = Some(loc),
                Mount::Started(loc) => {
                    // Not there either: drop the session and try the next.
                    let _ = self.client.send(self.req("DELETE", loc));
                }
            }
        }
        let progress = self.client.progress();
        progress.event(Event::Start {
            digest: &desc.digest,
            size: desc.size,
            action: "upload",
        });
        let mut restarted = false;
        loop {
            let loc = match location.take() {
                Some(l) => l,
                None => self.start_upload(&desc.digest)?,
            };
            match self.send_blob(src, desc, loc) {
                Err(e)
                    if !restarted
                        && (e.is_not_found() || matches!(e, Error::Status { status: 416, .. })) =>
                {
                    restarted = true;
                }
                r => return r.map(|_| BlobOutcome::Pushed),
            }
        }
    }

    /// `POST …/blobs/uploads/?mount=D&from=REPO`.
    fn try_mount(&self, d: &Digest, from: &str) -> Result<Mount> {
        let url = self.url(&format!(
            "blobs/uploads/?mount={d}&from={}",
            super::client::urlencode(from)
        ));
        let resp = self.client.send(self.req("POST", url.clone()))?;
        match resp.status().as_u16() {
            201 => Ok(Mount::Mounted),
            202 => Ok(Mount::Started(self.location(&resp, &url)?)),
            _ => Err(self.error_for("POST", &url, &format!("upload of blob {d}"), resp)),
        }
    }

    /// `POST …/blobs/uploads/`: a new upload session's URL.
    fn start_upload(&self, d: &Digest) -> Result<String> {
        let url = self.url("blobs/uploads/");
        let resp = self.client.send(self.req("POST", url.clone()))?;
        if resp.status().as_u16() != 202 {
            return Err(self.error_for("POST", &url, &format!("upload of blob {d}"), resp));
        }
        self.location(&resp, &url)
    }

    fn location(&self, resp: &ureq::http::Response<ureq::Body>, url: &str) -> Result<String> {
        header_str(resp, "location")
            .map(|l| self.absolute(&l))
            .ok_or_else(|| Error::invalid(format!("POST {url}"), "the response has no Location"))
    }

    /// Sends the bytes to an upload session and closes it.
    fn send_blob(&self, src: Source<'_>, desc: &Descriptor, mut loc: String) -> Result<()> {
        let d = &desc.digest;
        let progress = self.client.progress();
        let chunk = self.client.options().chunk_size;
        let what = format!("upload of blob {d}");
        let report = |base: u64| {
            move |sent: u64| {
                progress.event(Event::Progress {
                    digest: d,
                    done: base + sent,
                })
            }
        };
        let mut final_body: Option<(u64, u64)> = Some((0, desc.size));
        if chunk > 0 && desc.size > chunk {
            let mut offset = 0;
            while offset < desc.size {
                let len = chunk.min(desc.size - offset);
                let cb = report(offset);
                let resp = self.client.send(
                    self.req("PATCH", loc.clone())
                        .header("content-type", "application/octet-stream")
                        .header("content-range", format!("{offset}-{}", offset + len - 1))
                        .body(body_of(src, offset, len, &cb)),
                )?;
                if resp.status().as_u16() != 202 {
                    return Err(self.error_for("PATCH", &loc, &what, resp));
                }
                loc = self.location(&resp, &loc)?;
                offset += len;
            }
            final_body = None;
        }
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put_url = format!("{loc}{sep}digest={d}");
        let cb = report(0);
        let mut req = self
            .req("PUT", put_url.clone())
            .header("content-type", "application/octet-stream");
        if let Some((offset, len)) = final_body {
            req = req.body(body_of(src, offset, len, &cb));
        }
        let resp = self.client.send(req)?;
        if resp.status().as_u16() != 201 {
            return Err(self.error_for("PUT", &put_url, &what, resp));
        }
        if let Some(sent) = header_str(&resp, "docker-content-digest")
            && sent != d.as_str()
        {
            return Err(Error::invalid(
                what,
                format!("the registry stored it as {sent}"),
            ));
        }
        Ok(())
    }
}

/// `len` bytes of `src` from `offset`.
fn body_of<'a>(
    src: Source<'a>,
    offset: u64,
    len: u64,
    on_progress: &'a (dyn Fn(u64) + Sync),
) -> ReqBody<'a> {
    match src {
        Source::Bytes(b) => ReqBody::Bytes(&b[offset as usize..(offset + len) as usize]),
        Source::File(file) => ReqBody::File {
            file,
            offset,
            len,
            on_progress,
        },
    }
}

enum Mount {
    Mounted,
    /// Not mounted; the registry started an upload session instead.
    Started(String),
}
