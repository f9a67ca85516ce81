//! Where exported files go: a local directory (`file:///abs/dir`) or S3 (`s3://bucket/prefix`).
//!
//! Every file is first written completely under a name no reader looks at, then published in
//! one step: a rename within the target directory, or a single PUT / completed multipart
//! upload on S3. S3 staging files live in PostgreSQL's own temp directory with its temp-file
//! prefix, so the server removes them at restart after a crash.
//!
//! S3 calls run on a current-thread tokio runtime, one request at a time; between requests the
//! backend checks for interrupts, so cancel, statement_timeout and SIGTERM stay effective.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use pgrx::prelude::*;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::settings;

/// S3 objects above this size go up as a multipart upload in parts of this size.
const PART_BYTES: usize = 8 * 1024 * 1024;

pub enum Sink {
    /// `file_mode` / `dir_mode`: what kt_governance.export_file_mode gives the files and the
    /// directories this export creates (the server's umask would make them owner-only)
    Local { root: PathBuf, file_mode: u32, dir_mode: u32 },
    S3 { store: Box<AmazonS3>, runtime: tokio::runtime::Runtime, bucket: String, prefix: String },
}

/// Size and checksum of a published file.
pub struct Published {
    pub bytes: u64,
    pub sha256: String,
}

/// Every export error goes through here, scrubbed: it may hold an S3 response body.
pub fn fail(code: PgSqlErrorCode, message: String, hint: &str) -> ! {
    crate::errors::raise_with_hint(code, crate::export::scrub::scrub(&message), hint)
}

pub fn io_fail(what: &str, error: impl std::fmt::Display) -> ! {
    fail(
        PgSqlErrorCode::ERRCODE_IO_ERROR,
        format!("export: {what}: {error}"),
        "The export was abandoned: its files were removed and no manifest was written.",
    )
}

/// 16 random bytes from PostgreSQL's strong random source, as hex.
fn unguessable() -> String {
    let mut bytes = [0u8; 16];
    if !unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) } {
        fail(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "export: no random bytes for a staging name".into(), "");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a staging file that must not exist yet: O_CREAT | O_EXCL, which also refuses a
/// symlink in its place instead of following it. `mode` is set on the open file (fchmod), so
/// the published file has it whatever the server's umask.
fn create_staged_file(path: &Path, mode: Option<u32>) -> File {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap_or_else(|e| io_fail(&format!("creating {}", path.display()), e));
    if let Some(mode) = mode {
        file.set_permissions(fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| io_fail(&format!("setting the mode of {}", path.display()), e));
    }
    file
}

/// Creates `dir` and its missing ancestors, each with `mode`. Directories that exist keep
/// theirs (their owner chose it). The mode is set through a descriptor opened without following
/// symlinks, so a directory swapped for a link between mkdir and chmod gets no new mode.
fn make_dirs(dir: &Path, mode: u32) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        make_dirs(parent, mode)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(dir)?
            .set_permissions(fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn is_local(destination: &str) -> bool {
    destination.starts_with("file://")
}

/// Checks a destination's syntax without touching it.
pub fn parse_local(destination: &str) -> PathBuf {
    let raw = destination.trim_start_matches("file://");
    let path = Path::new(raw);
    if !path.is_absolute() {
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("export destination \"{destination}\" is not an absolute path"),
            "Use file:///absolute/directory (three slashes).",
        );
    }
    // the raw segments, not path.components(): components() silently drops an inner "."
    // (file:///a/./b), so it would accept what the documentation says is refused
    if raw.split('/').any(|segment| segment == "." || segment == "..") {
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("export destination \"{destination}\" contains . or .. segments"),
            "Give the directory's plain absolute path.",
        );
    }
    path.to_path_buf()
}

fn parse_s3(destination: &str) -> (String, String) {
    let rest = destination.trim_start_matches("s3://");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("export destination \"{destination}\" has no valid bucket name"),
            "Use s3://bucket/prefix; bucket names are 3-63 characters of a-z, 0-9, '-' and '.'.",
        );
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|s| s == ".." || s == ".") {
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("export destination \"{destination}\" contains . or .. segments"),
            "Give a plain key prefix.",
        );
    }
    (bucket.to_string(), prefix.to_string())
}

fn setting(s: &pgrx::GucSetting<Option<std::ffi::CString>>) -> Option<String> {
    s.get().and_then(|v| v.into_string().ok()).filter(|v| !v.is_empty())
}

/// Keys from an AWS shared-credentials file: the `[profile]` section's key = value lines.
fn credentials_from_file(path: &str, profile: &str) -> (Option<String>, Option<String>, Option<String>) {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| io_fail(&format!("reading kt_governance.s3_credentials_file \"{path}\""), e));
    let mut in_profile = false;
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_profile = line.trim_matches(|c| c == '[' || c == ']').trim() == profile;
        } else if let (true, Some((k, v))) = (in_profile, line.split_once('=')) {
            let v = Some(v.trim().to_string());
            match k.trim() {
                "aws_access_key_id" => key = v,
                "aws_secret_access_key" => secret = v,
                "aws_session_token" => token = v,
                _ => {}
            }
        }
    }
    (key, secret, token)
}

/// A credential setting's value, refused when ALTER SYSTEM put it in postgresql.auto.conf.
fn secret_setting(name: &str, s: &pgrx::GucSetting<Option<std::ffi::CString>>) -> Option<String> {
    let value = setting(s)?;
    if settings::set_by_alter_system(name) {
        fail(
            PgSqlErrorCode::ERRCODE_CONFIG_FILE_ERROR,
            format!("{name} was set with ALTER SYSTEM; S3 credentials are accepted only from postgresql.conf"),
            "ALTER SYSTEM RESET it (its text is in postgresql.auto.conf and possibly the server log), then set it in postgresql.conf or kt_governance.s3_credentials_file.",
        );
    }
    Some(value)
}

fn s3_store(bucket: &str) -> AmazonS3 {
    // the standard AWS environment (AWS_ACCESS_KEY_ID, AWS_REGION, web identity, instance
    // metadata) is the fallback; explicit settings and the credentials file win
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = setting(&settings::S3_ENDPOINT) {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = setting(&settings::S3_REGION) {
        builder = builder.with_region(region);
    }
    let (mut key, mut secret, mut token) = (None, None, None);
    if let Some(file) = secret_setting("kt_governance.s3_credentials_file", &settings::S3_CREDENTIALS_FILE) {
        let profile = setting(&settings::S3_PROFILE).unwrap_or_else(|| "default".into());
        (key, secret, token) = credentials_from_file(&file, &profile);
    }
    // every key in reach is scrubbed from error text, wherever it came from
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    crate::export::scrub::remember_secrets(
        [key.clone(), secret.clone(), token.clone()]
            .into_iter()
            .chain(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].map(from_env))
            .flatten(),
    );
    if let (Some(key), Some(secret)) = (key, secret) {
        builder = builder.with_access_key_id(key).with_secret_access_key(secret);
        if let Some(token) = token {
            builder = builder.with_token(token);
        }
    }
    let options = ClientOptions::new()
        .with_allow_http(settings::S3_ALLOW_HTTP.get())
        .with_timeout(Duration::from_secs(60))
        .with_connect_timeout(Duration::from_secs(5));
    let retry = RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(30), ..Default::default() };
    builder
        .with_virtual_hosted_style_request(!settings::S3_PATH_STYLE.get())
        .with_client_options(options)
        .with_retry(retry)
        .build()
        .unwrap_or_else(|e| {
            fail(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("export: S3 configuration: {e}"),
                "Check kt_governance.s3_endpoint, s3_region and s3_allow_http.",
            )
        })
}

impl Sink {
    pub fn open(destination: &str) -> Sink {
        if is_local(destination) {
            let root = parse_local(destination);
            let (file_mode, dir_mode) = settings::export_modes();
            return Sink::Local { root, file_mode, dir_mode };
        }
        if destination.starts_with("s3://") {
            let (bucket, prefix) = parse_s3(destination);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| io_fail("starting the S3 client runtime", e));
            let store = Box::new(s3_store(&bucket));
            return Sink::S3 { store, runtime, bucket, prefix };
        }
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("export destination \"{destination}\" has an unsupported scheme"),
            "Use file:///absolute/directory or s3://bucket/prefix.",
        )
    }

    /// Full URL of a path relative to the destination.
    pub fn url(&self, relative: &str) -> String {
        match self {
            Sink::Local { root, .. } => format!("file://{}", root.join(relative).display()),
            Sink::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{}", self.key(prefix, relative)),
        }
    }

    fn key(&self, prefix: &str, relative: &str) -> String {
        if prefix.is_empty() { relative.to_string() } else { format!("{prefix}/{relative}") }
    }

    fn object(&self, relative: &str) -> ObjectPath {
        match self {
            Sink::S3 { prefix, .. } => ObjectPath::from(self.key(prefix, relative)),
            Sink::Local { .. } => unreachable!("local sinks have no object paths"),
        }
    }

    /// Where to write a file before it is published as `relative`: a name nobody can guess (a
    /// planted file or symlink there would otherwise receive the export), created exclusively
    /// by `create_staged`.
    pub fn staging_path(&self, relative: &str, run_id: &str) -> PathBuf {
        let token = unguessable();
        match self {
            Sink::Local { root, dir_mode, .. } => {
                let target = root.join(relative);
                let dir = target.parent().expect("relative paths have a directory");
                make_dirs(dir, *dir_mode)
                    .unwrap_or_else(|e| io_fail(&format!("creating directory {}", dir.display()), e));
                let name = target.file_name().expect("a file name").to_string_lossy();
                dir.join(format!(".{name}.{run_id}.{token}.tmp"))
            }
            Sink::S3 { .. } => {
                // PostgreSQL removes pgsql_tmp* files in base/pgsql_tmp when it restarts
                let dir = PathBuf::from("base/pgsql_tmp");
                fs::create_dir_all(&dir).unwrap_or_else(|e| io_fail("creating base/pgsql_tmp", e));
                let flat = relative.replace('/', "_");
                dir.join(format!("pgsql_tmp_kt_export_{}_{run_id}_{token}_{flat}", std::process::id()))
            }
        }
    }

    /// Creates a staging file from `staging_path`: local ones get the export file mode, S3 ones
    /// (in the server's temp directory) stay the server's own.
    pub fn create_staged(&self, path: &Path) -> File {
        match self {
            Sink::Local { file_mode, .. } => create_staged_file(path, Some(*file_mode)),
            Sink::S3 { .. } => create_staged_file(path, None),
        }
    }

    /// Makes the finished staging file visible as `relative`, in one step.
    pub fn publish(&self, staged: &Path, relative: &str) -> Published {
        let published = checksum(staged);
        match self {
            Sink::Local { root, .. } => {
                let target = root.join(relative);
                File::open(staged)
                    .and_then(|f| f.sync_all())
                    .unwrap_or_else(|e| io_fail(&format!("syncing {}", staged.display()), e));
                fs::rename(staged, &target)
                    .unwrap_or_else(|e| io_fail(&format!("publishing {}", target.display()), e));
                sync_dir(target.parent().expect("a directory"));
            }
            Sink::S3 { .. } => {
                let result = self.upload(staged, relative);
                let _ = fs::remove_file(staged);
                result.unwrap_or_else(|e| io_fail(&format!("uploading {}", self.url(relative)), e));
            }
        }
        published
    }

    fn upload(&self, staged: &Path, relative: &str) -> Result<(), String> {
        let Sink::S3 { store, runtime, .. } = self else { unreachable!("only S3 uploads") };
        let location = self.object(relative);
        let size = fs::metadata(staged).map_err(|e| crate::export::scrub::scrub(&e.to_string()))?.len() as usize;
        let mut file = File::open(staged).map_err(|e| crate::export::scrub::scrub(&e.to_string()))?;
        if size <= PART_BYTES {
            let mut body = Vec::with_capacity(size);
            file.read_to_end(&mut body).map_err(|e| crate::export::scrub::scrub(&e.to_string()))?;
            runtime.block_on(store.put(&location, PutPayload::from(body))).map_err(|e| crate::export::scrub::scrub(&e.to_string()))?;
            return Ok(());
        }
        // a multipart upload stays invisible until complete(); an error or a cancel between
        // parts aborts it, so no reader ever sees part of the file
        let mut upload = runtime.block_on(store.put_multipart(&location)).map_err(|e| crate::export::scrub::scrub(&e.to_string()))?;
        let mut buffer = vec![0u8; PART_BYTES];
        loop {
            let n = read_full(&mut file, &mut buffer).map_err(|e| crate::export::scrub::scrub(&e.to_string()))?;
            if n == 0 {
                break;
            }
            let part = upload.put_part(PutPayload::from(buffer[..n].to_vec()));
            if let Err(e) = runtime.block_on(part) {
                let _ = runtime.block_on(upload.abort());
                return Err(crate::export::scrub::scrub(&e.to_string()));
            }
            if interrupt_pending() {
                let _ = runtime.block_on(upload.abort());
                check_for_interrupts!();
            }
        }
        runtime.block_on(upload.complete()).map_err(|e| crate::export::scrub::scrub(&e.to_string()))?;
        Ok(())
    }

    /// A small file's content (the previous manifest), or None when it does not exist.
    pub fn read_small(&self, relative: &str) -> Option<Vec<u8>> {
        match self {
            Sink::Local { root, .. } => fs::read(root.join(relative)).ok(),
            Sink::S3 { store, runtime, .. } => {
                let location = self.object(relative);
                match runtime.block_on(async { store.get(&location).await?.bytes().await }) {
                    Ok(bytes) => Some(bytes.to_vec()),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(e) => io_fail(&format!("reading {}", self.url(relative)), e),
                }
            }
        }
    }

    /// Writes a small file (a manifest) atomically.
    pub fn write_small(&self, relative: &str, content: &[u8], run_id: &str) -> Published {
        let staged = self.staging_path(relative, run_id);
        self.create_staged(&staged)
            .write_all(content)
            .unwrap_or_else(|e| io_fail(&format!("writing {}", staged.display()), e));
        self.publish(&staged, relative)
    }

    /// Removes a published file; a file that is already gone is fine.
    pub fn remove(&self, relative: &str) {
        match self {
            Sink::Local { root, .. } => match fs::remove_file(root.join(relative)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    warning!("export: could not remove superseded {}: {e}", self.url(relative))
                }
                _ => {}
            },
            Sink::S3 { store, runtime, .. } => {
                if let Err(e) = runtime.block_on(store.delete(&self.object(relative))) {
                    warning!("export: could not remove superseded {}: {e}", self.url(relative));
                }
            }
        }
    }

    /// Removes a file of a failed export, silently (an error is already on its way).
    pub fn remove_quietly(&self, relative: &str) {
        match self {
            Sink::Local { root, .. } => {
                let _ = fs::remove_file(root.join(relative));
            }
            Sink::S3 { store, runtime, .. } => {
                let _ = runtime.block_on(store.delete(&self.object(relative)));
            }
        }
    }

    /// Fails early, before any data is read, when the destination cannot be written.
    pub fn probe(&self, run_id: &str) {
        match self {
            Sink::Local { root, dir_mode, .. } => {
                make_dirs(root, *dir_mode)
                    .unwrap_or_else(|e| io_fail(&format!("creating directory {}", root.display()), e));
                let probe = root.join(format!(".kt_export_probe.{run_id}.tmp"));
                File::create(&probe).unwrap_or_else(|e| io_fail(&format!("writing in {}", root.display()), e));
                let _ = fs::remove_file(probe);
            }
            Sink::S3 { store, runtime, bucket, .. } => {
                // listing the manifests fails for a missing bucket or bad credentials, before
                // any data is read
                let location = self.object("_manifests");
                if let Err(e) = runtime.block_on(store.list_with_delimiter(Some(&location))) {
                    io_fail(&format!("S3 bucket \"{bucket}\" is not usable"), e);
                }
            }
        }
    }
}

fn interrupt_pending() -> bool {
    unsafe { pg_sys::InterruptPending != 0 }
}

fn read_full(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = file.read(&mut buffer[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn checksum(path: &Path) -> Published {
    let mut file = File::open(path).unwrap_or_else(|e| io_fail(&format!("reading {}", path.display()), e));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).unwrap_or_else(|e| io_fail(&format!("reading {}", path.display()), e));
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Published { bytes, sha256 }
}
