//! Image files on this member: LXD unified tarballs (metadata.yaml + rootfs/, gzip or xz)
//! kept as `images/<fingerprint>`, where the fingerprint is the sha256 of the file. Importing
//! reads the metadata; unpacking makes a container's root. Which members hold a file, and
//! copying it between them, is `services::images::replication`'s business.
//!
//! May call: util.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

impl ImageError {
    /// The HTTP status the API answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            ImageError::Invalid(_) => 400,
            ImageError::Io(_) => 500,
        }
    }
}

pub type Result<T> = std::result::Result<T, ImageError>;

/// What an image's metadata.yaml says.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub creation_date: i64,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

pub fn fingerprint(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

pub fn path(lxd_dir: &Path, fingerprint: &str) -> PathBuf {
    lxd_dir.join("images").join(fingerprint)
}

/// Whether `fp` looks like a full sha256 fingerprint (it becomes a file name).
pub fn valid_fingerprint(fp: &str) -> bool {
    fp.len() == 64 && fp.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads metadata.yaml out of a unified tarball.
pub fn read_metadata(file: &Path) -> Result<Metadata> {
    let out = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(file)
        .arg("metadata.yaml")
        .output()
        .map_err(|e| ImageError::Io(format!("running tar: {e}")))?;
    if !out.status.success() {
        return Err(ImageError::Invalid(
            "Invalid image: it is not a unified tarball with a metadata.yaml (gzip or xz compressed)".into(),
        ));
    }
    serde_yaml::from_slice(&out.stdout).map_err(|e| ImageError::Invalid(format!("Invalid image metadata.yaml: {e}")))
}

/// Stores `data` as an image file; returns its fingerprint and metadata. A file that is not a
/// unified tarball is refused and nothing is kept.
pub fn store(lxd_dir: &Path, data: &[u8]) -> Result<(String, Metadata)> {
    let fp = fingerprint(data);
    let final_path = path(lxd_dir, &fp);
    let tmp = lxd_dir.join("images").join(format!(".{fp}.partial"));
    std::fs::write(&tmp, data).map_err(|e| ImageError::Io(format!("writing {}: {e}", tmp.display())))?;
    let meta = match read_metadata(&tmp) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &final_path).map_err(|e| ImageError::Io(format!("storing {}: {e}", final_path.display())))?;
    Ok((fp, meta))
}

/// Stores a copy received from another member after checking it is the expected file.
pub fn store_copy(lxd_dir: &Path, fp: &str, data: &[u8]) -> Result<()> {
    if !valid_fingerprint(fp) || fingerprint(data) != fp {
        return Err(ImageError::Invalid(format!("Image copy does not match fingerprint {fp}")));
    }
    let tmp = lxd_dir.join("images").join(format!(".{fp}.partial"));
    std::fs::write(&tmp, data).map_err(|e| ImageError::Io(format!("writing {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path(lxd_dir, fp)).map_err(|e| ImageError::Io(e.to_string()))
}

/// Where the image is kept unpacked on this member (metadata.yaml, rootfs/, templates/).
fn unpacked_dir(lxd_dir: &Path, fp: &str) -> PathBuf {
    lxd_dir.join("images").join(format!("{fp}.unpacked"))
}

/// The image unpacked, made on first use: as LXD's `dir` driver keeps an image volume, the
/// tarball is decompressed once per member and each container starts as a copy of it.
fn unpacked(lxd_dir: &Path, fp: &str) -> Result<PathBuf> {
    let dir = unpacked_dir(lxd_dir, fp);
    if dir.join("rootfs").is_dir() {
        return Ok(dir);
    }
    let tmp = lxd_dir.join("images").join(format!(".{fp}.unpacking-{}-{}", std::process::id(), crate::util::time::now_nanos()));
    let made = untar(lxd_dir, fp, &tmp).and_then(|()| {
        std::fs::rename(&tmp, &dir).or_else(|e| {
            // Another creation unpacked it first: theirs is as good as ours.
            if dir.join("rootfs").is_dir() { Ok(()) } else { Err(ImageError::Io(format!("keeping {}: {e}", dir.display()))) }
        })
    });
    let _ = std::fs::remove_dir_all(&tmp);
    made.map(|()| dir)
}

fn untar(lxd_dir: &Path, fp: &str, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(|e| ImageError::Io(format!("creating {}: {e}", dest.display())))?;
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(dest)
        .args(["--numeric-owner", "--same-permissions", "--xattrs", "--xattrs-include=*", "-xf"])
        .arg(path(lxd_dir, fp))
        .output()
        .map_err(|e| ImageError::Io(format!("running tar: {e}")))?;
    if !out.status.success() {
        return Err(ImageError::Io(format!("Failed to unpack image {fp}: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    if !dest.join("rootfs").is_dir() {
        return Err(ImageError::Invalid(format!("Image {fp} has no rootfs/ directory")));
    }
    Ok(())
}

/// Creates `dest` (which must not exist) holding the image's metadata.yaml, rootfs/ and
/// templates/.
pub fn unpack(lxd_dir: &Path, fp: &str, dest: &Path) -> Result<()> {
    let source = unpacked(lxd_dir, fp)?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ImageError::Io(format!("creating {}: {e}", parent.display())))?;
    }
    crate::util::tree::copy(&source, dest).map_err(|e| ImageError::Io(format!("Failed to create {}: {e}", dest.display())))
}

/// Removes the image's file and its unpacked copy from this member.
pub fn remove(lxd_dir: &Path, fp: &str) {
    if valid_fingerprint(fp) {
        let _ = std::fs::remove_file(path(lxd_dir, fp));
        let _ = std::fs::remove_dir_all(unpacked_dir(lxd_dir, fp));
    }
}

pub fn has(lxd_dir: &Path, fp: &str) -> bool {
    valid_fingerprint(fp) && path(lxd_dir, fp).is_file()
}
