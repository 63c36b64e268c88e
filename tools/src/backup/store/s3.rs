//! An S3 bucket (or an S3-compatible server) as the archive store. Uploads are multipart into
//! `PREFIX.incomplete/<host>/NAME` with a bounded number of parts in flight; `complete` copies
//! the finished object server-side to `PREFIX/NAME` with the full metadata (its sha256 is known
//! only at the end) and deletes the temporary one. Transient errors are retried with backoff
//! by the SDK's standard retry mode.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, MetadataDirective,
    ServerSideEncryption, StorageClass,
};
use aws_sdk_s3::Client;
use tokio::task::JoinSet;

use super::Object;
use crate::backup::archive::{self, Meta};
use crate::backup::{Error, Settings};

/// Uploads older than this from other hosts are considered abandoned.
const STALE: Duration = Duration::from_secs(24 * 3600);

/// One line for an S3 error: the server's code and message, or the chain of causes of a
/// transport failure.
fn s3err<E>(what: &str, e: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = match &e {
        SdkError::ServiceError(se) => {
            let m = se.err();
            match (m.code(), m.message()) {
                (Some("NoSuchBucket"), _) => {
                    "the bucket does not exist (create it first, or check --store)".to_string()
                }
                (Some(c), Some(msg)) => format!("{c}: {msg}"),
                (Some(c), None) => c.to_string(),
                _ => format!("HTTP {} {:?}", se.raw().status().as_u16(), se.raw().body()),
            }
        }
        other => {
            let mut parts = vec![other.to_string()];
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                let t = s.to_string();
                if !parts.iter().any(|p| p.contains(&t)) {
                    parts.push(t);
                }
                src = s.source();
            }
            parts.join(": ")
        }
    };
    Error::failed(format!("{what}: {detail}"))
}

#[derive(Clone)]
struct Put {
    sse: Option<ServerSideEncryption>,
    kms_key: Option<String>,
    storage_class: Option<StorageClass>,
}

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    put: Put,
    concurrency: usize,
    copy_part_size: u64,
}

type PartResult = Result<CompletedPart, Error>;

pub struct S3Upload {
    store: S3Store,
    key: String,
    name: String,
    upload_id: String,
    next_part: i32,
    in_flight: JoinSet<PartResult>,
    done: Vec<CompletedPart>,
    size: u64,
}

/// Percent-encodes a key for `x-amz-copy-source` (everything but unreserved characters and
/// `/`).
fn encode_key(k: &str) -> String {
    let mut out = String::new();
    for b in k.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Clone for S3Store {
    fn clone(&self) -> S3Store {
        S3Store {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            put: self.put.clone(),
            concurrency: self.concurrency,
            copy_part_size: self.copy_part_size,
        }
    }
}

impl S3Store {
    pub async fn open(s: &Settings, bucket: &str, prefix: &str) -> Result<S3Store, Error> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        let region = s.get("s3-region");
        if !region.is_empty() {
            loader = loader.region(aws_config::Region::new(region));
        }
        let ca = s.get("s3-ca-file");
        if !ca.is_empty() {
            use aws_smithy_http_client::tls;
            let pem =
                std::fs::read(&ca).map_err(|e| Error::usage(format!("--s3-ca-file {ca}: {e}")))?;
            let ctx = tls::TlsContext::builder()
                .with_trust_store(tls::TrustStore::default().with_pem_certificate(pem))
                .build()
                .map_err(|e| Error::usage(format!("--s3-ca-file {ca}: {e}")))?;
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(ctx)
                .build_https();
            loader = loader.http_client(http);
        }
        let sdk = loader.load().await;
        let attempts: u32 = s.number("s3-max-attempts")?.max(1) as u32;
        let mut b = aws_sdk_s3::config::Builder::from(&sdk).retry_config(
            aws_sdk_s3::config::retry::RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(200)),
        );
        if sdk.region().is_none() {
            b = b.region(aws_config::Region::new("us-east-1"));
        }
        let endpoint = s.get("s3-endpoint");
        if !endpoint.is_empty() {
            b = b.endpoint_url(endpoint);
        }
        b = b.force_path_style(s.bool("s3-path-style") || !s.get("s3-endpoint").is_empty());
        let sse = match s.get("s3-sse").as_str() {
            "" => None,
            "AES256" | "aes256" | "sse-s3" => Some(ServerSideEncryption::Aes256),
            "aws:kms" | "kms" | "sse-kms" => Some(ServerSideEncryption::AwsKms),
            other => {
                return Err(Error::usage(format!(
                    "--s3-sse {other}: use AES256 (SSE-S3) or aws:kms (SSE-KMS, with --s3-sse-kms-key-id)"
                )))
            }
        };
        let kms_key = Some(s.get("s3-sse-kms-key-id")).filter(|k| !k.is_empty());
        if kms_key.is_some() && sse != Some(ServerSideEncryption::AwsKms) {
            return Err(Error::usage("--s3-sse-kms-key-id needs --s3-sse aws:kms"));
        }
        let storage_class = Some(s.get("s3-storage-class"))
            .filter(|c| !c.is_empty())
            .map(|c| StorageClass::from(c.as_str()));
        Ok(S3Store {
            client: Client::from_conf(b.build()),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            put: Put {
                sse,
                kms_key,
                storage_class,
            },
            concurrency: s.number("upload-concurrency")?.max(1) as usize,
            copy_part_size: s.number("s3-copy-part-size")?.max(5) << 20,
        })
    }

    pub fn url(&self, name: &str) -> String {
        format!("s3://{}/{}{name}", self.bucket, self.prefix)
    }

    fn incomplete(&self, host: &str) -> String {
        format!("{}.incomplete/{host}/", self.prefix)
    }

    pub async fn cleanup(&self, host: &str) -> Result<Vec<String>, Error> {
        let root = format!("{}.incomplete/", self.prefix);
        let mine = self.incomplete(host);
        let now = aws_sdk_s3::primitives::DateTime::from(std::time::SystemTime::now());
        let stale = |t: Option<&aws_sdk_s3::primitives::DateTime>| {
            t.is_some_and(|t| now.secs() - t.secs() > STALE.as_secs() as i64)
        };
        let mut removed = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let r = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&root)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| s3err("list multipart uploads", e))?;
            for u in r.uploads() {
                let (Some(k), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                if k.starts_with(&mine) || stale(u.initiated()) {
                    self.client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(k)
                        .upload_id(id)
                        .send()
                        .await
                        .map_err(|e| s3err("abort multipart upload", e))?;
                    removed.push(format!("s3://{}/{k} (upload {id})", self.bucket));
                }
            }
            if r.is_truncated() != Some(true) {
                break;
            }
            key_marker = r.next_key_marker().map(str::to_string);
            id_marker = r.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        for (k, t) in self.keys(&root, None).await? {
            if k.starts_with(&mine) || stale(t.as_ref()) {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&k)
                    .send()
                    .await
                    .map_err(|e| s3err("delete", e))?;
                removed.push(format!("s3://{}/{k}", self.bucket));
            }
        }
        Ok(removed)
    }

    /// Keys under `prefix` (with `delimiter`, only the top level) and their times.
    async fn keys(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Vec<(String, Option<aws_sdk_s3::primitives::DateTime>)>, Error> {
        Ok(self
            .objects(prefix, delimiter)
            .await?
            .into_iter()
            .map(|(k, _, t)| (k, t))
            .collect())
    }

    async fn objects(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Vec<(String, u64, Option<aws_sdk_s3::primitives::DateTime>)>, Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let r = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| s3err(&format!("list s3://{}/{prefix}", self.bucket), e))?;
            for o in r.contents() {
                if let Some(k) = o.key() {
                    out.push((
                        k.to_string(),
                        o.size().unwrap_or(0).max(0) as u64,
                        o.last_modified().cloned(),
                    ));
                }
            }
            token = r.next_continuation_token().map(str::to_string);
            if r.is_truncated() != Some(true) || token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    pub async fn begin(&self, host: &str, name: &str, meta: &Meta) -> Result<S3Upload, Error> {
        let key = format!("{}{name}", self.incomplete(host));
        let r = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&key)
            .set_metadata(Some(meta.to_map()))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .set_server_side_encryption(self.put.sse.clone())
            .set_ssekms_key_id(self.put.kms_key.clone())
            .set_storage_class(self.put.storage_class.clone())
            .send()
            .await
            .map_err(|e| s3err(&format!("start upload to s3://{}/{key}", self.bucket), e))?;
        let upload_id = r
            .upload_id()
            .ok_or_else(|| Error::failed("the S3 server returned no upload ID"))?
            .to_string();
        Ok(S3Upload {
            store: self.clone(),
            key,
            name: name.to_string(),
            upload_id,
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            size: 0,
        })
    }

    pub async fn list(&self) -> Result<Vec<Object>, Error> {
        Ok(self
            .objects(&self.prefix, Some("/"))
            .await?
            .into_iter()
            .filter_map(|(k, size, _)| {
                let name = k.strip_prefix(&self.prefix)?.to_string();
                archive::parse(&name)?;
                Some(Object { name, size })
            })
            .collect())
    }

    pub async fn meta(&self, name: &str) -> Result<Meta, Error> {
        let r = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(format!("{}{name}", self.prefix))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
                {
                    Error::failed(format!("no archive {}", self.url(name)))
                } else {
                    s3err(&format!("read metadata of {}", self.url(name)), e)
                }
            })?;
        let empty = HashMap::new();
        Meta::from_map(r.metadata().unwrap_or(&empty))
            .map_err(|e| Error::corrupt(format!("{}: {e}", self.url(name))))
    }

    pub async fn get(&self, name: &str) -> Result<ByteStream, Error> {
        let r = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{}{name}", self.prefix))
            .send()
            .await
            .map_err(|e| s3err(&format!("download {}", self.url(name)), e))?;
        Ok(r.body)
    }

    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        for key in [
            format!("{}{name}", self.prefix),
            format!("{}.verified/{name}", self.prefix),
        ] {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| s3err(&format!("delete s3://{}/{key}", self.bucket), e))?;
        }
        Ok(())
    }

    pub async fn mark_verified(&self, name: &str) -> Result<(), Error> {
        let key = format!("{}.verified/{name}", self.prefix);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(
                format!("{}\n", archive::rfc3339(super::file::now_secs())).into_bytes(),
            ))
            .send()
            .await
            .map_err(|e| s3err(&format!("write s3://{}/{key}", self.bucket), e))?;
        Ok(())
    }

    pub async fn verified(&self) -> Result<HashSet<String>, Error> {
        let root = format!("{}.verified/", self.prefix);
        Ok(self
            .keys(&root, None)
            .await?
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&root).map(str::to_string))
            .collect())
    }

    /// Copies `src` to `dst` server-side with `meta` replacing the metadata: one CopyObject
    /// up to the copy part size, a multipart copy beyond (CopyObject stops at 5 GiB).
    async fn copy(&self, src: &str, dst: &str, size: u64, meta: &Meta) -> Result<(), Error> {
        let source = format!("{}/{}", self.bucket, encode_key(src));
        let what = format!("publish s3://{}/{dst}", self.bucket);
        if size <= self.copy_part_size {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(dst)
                .copy_source(&source)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .metadata_directive(MetadataDirective::Replace)
                .set_metadata(Some(meta.to_map()))
                .set_server_side_encryption(self.put.sse.clone())
                .set_ssekms_key_id(self.put.kms_key.clone())
                .set_storage_class(self.put.storage_class.clone())
                .send()
                .await
                .map_err(|e| s3err(&what, e))?;
            return Ok(());
        }
        let r = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(dst)
            .set_metadata(Some(meta.to_map()))
            .set_server_side_encryption(self.put.sse.clone())
            .set_ssekms_key_id(self.put.kms_key.clone())
            .set_storage_class(self.put.storage_class.clone())
            .send()
            .await
            .map_err(|e| s3err(&what, e))?;
        let id = r
            .upload_id()
            .ok_or_else(|| Error::failed("the S3 server returned no upload ID"))?
            .to_string();
        let result = async {
            let mut parts = Vec::new();
            let mut start = 0u64;
            let mut n = 1;
            while start < size {
                let end = (start + self.copy_part_size).min(size) - 1;
                let p = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(dst)
                    .upload_id(&id)
                    .part_number(n)
                    .copy_source(&source)
                    .copy_source_range(format!("bytes={start}-{end}"))
                    .send()
                    .await
                    .map_err(|e| s3err(&what, e))?;
                let etag = p
                    .copy_part_result()
                    .and_then(|c| c.e_tag())
                    .ok_or_else(|| Error::failed("the S3 server returned no ETag for a part"))?;
                parts.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
                n += 1;
                start = end + 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(dst)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| s3err(&what, e))?;
            Ok::<(), Error>(())
        }
        .await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(dst)
                .upload_id(&id)
                .send()
                .await;
        }
        result
    }
}

impl S3Upload {
    pub async fn part(&mut self, data: Vec<u8>) -> Result<(), Error> {
        while self.in_flight.len() >= self.store.concurrency {
            self.finish_one().await?;
        }
        let n = self.next_part;
        self.next_part += 1;
        self.size += data.len() as u64;
        let (client, bucket, key, id) = (
            self.store.client.clone(),
            self.store.bucket.clone(),
            self.key.clone(),
            self.upload_id.clone(),
        );
        self.in_flight.spawn(async move {
            let r = client
                .upload_part()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&id)
                .part_number(n)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(data))
                .send()
                .await
                .map_err(|e| s3err(&format!("upload part {n} of s3://{bucket}/{key}"), e))?;
            Ok(CompletedPart::builder()
                .part_number(n)
                .set_e_tag(r.e_tag().map(str::to_string))
                .set_checksum_crc32(r.checksum_crc32().map(str::to_string))
                .build())
        });
        Ok(())
    }

    async fn finish_one(&mut self) -> Result<(), Error> {
        match self.in_flight.join_next().await {
            Some(Ok(r)) => {
                self.done.push(r?);
                Ok(())
            }
            Some(Err(e)) => Err(Error::failed(format!("part upload task failed: {e}"))),
            None => Ok(()),
        }
    }

    pub async fn complete(mut self, meta: &Meta) -> Result<u64, Error> {
        while !self.in_flight.is_empty() {
            self.finish_one().await?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let s = &self.store;
        s.client
            .complete_multipart_upload()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                s3err(
                    &format!("finish upload of s3://{}/{}", s.bucket, self.key),
                    e,
                )
            })?;
        let dst = format!("{}{}", s.prefix, self.name);
        let copied = s.copy(&self.key, &dst, self.size, meta).await;
        // The temporary object goes either way; if deleting it fails, the next run does.
        let _ = s
            .client
            .delete_object()
            .bucket(&s.bucket)
            .key(&self.key)
            .send()
            .await;
        copied?;
        Ok(self.size)
    }

    pub async fn abort(mut self) -> Result<(), Error> {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        let s = &self.store;
        s.client
            .abort_multipart_upload()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|e| s3err("abort the multipart upload (the next run removes it)", e))?;
        Ok(())
    }
}
