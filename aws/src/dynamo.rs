//! The store port over DynamoDB: one table, partition key `t` (the store's table name), sort key `k` (the
//! record key), `v` the version and `d` the JSON value.
//!
//! Semantics match the embedded store (the conformance suite runs against both): reads are strongly
//! consistent, every condition is a DynamoDB condition expression on `v`, and every write — one record or
//! several — is one `TransactWriteItems` (all or nothing, idempotent under the SDK's retries). A value over
//! 16 KB is stored deflated in `z` instead of `d`: a 100-pair readiness record is 320 KB of JSON, close to
//! DynamoDB's 400 KB item limit, and JSON deflates about tenfold. A put without a condition still returns its exact
//! new version: the current version is read first and the write is conditioned on it, retried if another
//! writer came between. Records are limited by DynamoDB's 400 KB item size.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, ScalarAttributeType, TableStatus, TransactWriteItem, Update,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use engine::store::{Expect, Json, Record, Store, StoreError, WriteOp};
use std::collections::{HashMap, HashSet};

/// DynamoDB's item limit is 400 KB; this leaves room for the key and attribute names.
pub const MAX_VALUE_BYTES: usize = 390 * 1024;
/// Values larger than this are stored deflated.
pub const COMPRESS_ABOVE_BYTES: usize = 16 * 1024;

fn deflate(text: &str) -> Result<Vec<u8>, StoreError> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).and_then(|()| e.finish()).map_err(|err| StoreError::Unexpected(err.into()))
}

fn inflate(bytes: &[u8]) -> Result<String, StoreError> {
    use std::io::Read;
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(64 * 1024 * 1024)
        .read_to_string(&mut out)
        .map_err(|err| StoreError::Unexpected(anyhow::anyhow!("a deflated record does not inflate: {err}")))?;
    Ok(out)
}
/// `TransactWriteItems` takes at most 100 actions.
pub const MAX_TRANSACTION: usize = 100;
/// Attempts of a transaction whose unconditional writes met a concurrent writer.
const ATTEMPTS: usize = 5;

/// Versioned records in one DynamoDB table.
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(table: &str, k: &str) -> Item {
    HashMap::from([("t".to_owned(), s(table)), ("k".to_owned(), s(k))])
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(
    what: &str,
    e: aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB {what}: {}", DisplayErrorContext(&e)))
}

fn record(item: &Item) -> Result<Record, StoreError> {
    let get = |a: &str| item.get(a).ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("a store item has no `{a}`")));
    let key = get("k")?.as_s().map_err(|_| StoreError::Unexpected(anyhow::anyhow!("`k` is not a string")))?.clone();
    let version = get("v")?
        .as_n()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("{key}: `v` is not a version")))?;
    let text = match item.get("z") {
        Some(z) => inflate(
            z.as_b().map_err(|_| StoreError::Unexpected(anyhow::anyhow!("{key}: `z` is not binary")))?.as_ref(),
        )?,
        None => {
            get("d")?.as_s().map_err(|_| StoreError::Unexpected(anyhow::anyhow!("{key}: `d` is not text")))?.clone()
        }
    };
    let value = Json::parse(text).map_err(|e| StoreError::Unexpected(anyhow::anyhow!("{key}: {e}")))?;
    Ok(Record { key, version, value })
}

/// The attribute names used by `exprs` (DynamoDB refuses unused ones).
fn names_in(exprs: &[&str]) -> Option<HashMap<String, String>> {
    let all = [("#t", "t"), ("#k", "k"), ("#v", "v"), ("#d", "d"), ("#z", "z")];
    let used: HashMap<String, String> = all
        .iter()
        .filter(|(n, _)| exprs.iter().any(|e| e.contains(n)))
        .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
        .collect();
    (!used.is_empty()).then_some(used)
}

/// The condition expression of `expect` (`None`: unconditional).
fn condition(expect: Expect) -> Option<(String, Option<AttributeValue>)> {
    match expect {
        Expect::Any => None,
        Expect::Absent => Some(("attribute_not_exists(#t)".into(), None)),
        Expect::Version(v) => Some(("#v = :expected".into(), Some(n(v)))),
    }
}

/// One write, its conditions made exact: the version it will write (or report) is known.
struct Exact {
    op: WriteOp,
    expect: Expect,
    /// The caller gave no condition; a conflict means a concurrent writer, and the transaction is retried.
    resolved: bool,
}

impl Exact {
    fn outcome(&self) -> u64 {
        match (&self.op, self.expect) {
            (WriteOp::Put { .. }, Expect::Version(v)) => v + 1,
            (WriteOp::Put { .. }, _) => 1,
            (WriteOp::Delete { .. }, _) => 0,
            (WriteOp::Check { .. }, Expect::Version(v)) => v,
            (WriteOp::Check { .. }, _) => 0,
        }
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The store of these settings: `dynamodb_table` in the home region, with the base credentials (the
    /// default chain) and the emulator endpoint when one is set.
    ///
    /// # Errors
    /// When no home region can be found.
    pub async fn open(settings: &crate::AwsSettings) -> anyhow::Result<Self> {
        let region = settings
            .home_region()
            .ok_or_else(|| anyhow::anyhow!("the DynamoDB store needs aws.home_region (ROUNDTRIP_AWS_HOME_REGION)"))?;
        let cfg = crate::clients::base_config(settings, &region).await;
        let mut b = aws_sdk_dynamodb::config::Builder::from(&cfg);
        if let Some(ep) = &settings.dynamodb_endpoint_url {
            b = b.endpoint_url(ep);
        }
        Ok(Self::new(Client::from_conf(b.build()), settings.dynamodb_table.clone()))
    }

    /// Creates the table (on-demand capacity, point-in-time recovery on) unless it exists, and waits until
    /// it is active. Returns whether it was created.
    ///
    /// # Errors
    /// When DynamoDB refuses (permissions, limits).
    pub async fn init(&self) -> anyhow::Result<bool> {
        let created = match self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder().attribute_name("t").attribute_type(ScalarAttributeType::S).build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder().attribute_name("k").attribute_type(ScalarAttributeType::S).build()?,
            )
            .key_schema(KeySchemaElement::builder().attribute_name("t").key_type(KeyType::Hash).build()?)
            .key_schema(KeySchemaElement::builder().attribute_name("k").key_type(KeyType::Range).build()?)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) if e.code() == Some("ResourceInUseException") => false,
            Err(e) => anyhow::bail!("cannot create table {}: {}", self.table, DisplayErrorContext(&e)),
        };
        for _ in 0..120 {
            let d = self.client.describe_table().table_name(&self.table).send().await?;
            if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        self.client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(true).build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot turn on point-in-time recovery: {}", DisplayErrorContext(&e)))?;
        Ok(created)
    }

    /// Whether the table exists and can be read.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] naming the cause.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| unavailable("DescribeTable", e))?;
        Ok(())
    }

    async fn version_of(&self, table: &str, k: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.get(table, k).await?.map(|r| r.version))
    }

    /// Makes every write's condition exact (see the module documentation).
    async fn exact(&self, ops: &[WriteOp]) -> Result<Vec<Exact>, StoreError> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let expect = match op {
                WriteOp::Put { expect, .. } | WriteOp::Delete { expect, .. } | WriteOp::Check { expect, .. } => *expect,
            };
            let needs_read = expect == Expect::Any && !matches!(op, WriteOp::Delete { .. });
            let (expect, resolved) = if needs_read {
                let (t, k) = op.target();
                (self.version_of(t, k).await?.map_or(Expect::Absent, Expect::Version), true)
            } else {
                (expect, false)
            };
            out.push(Exact { op: op.clone(), expect, resolved });
        }
        Ok(out)
    }

    fn update_of(&self, e: &Exact, table: &str, k: &str, value: &Json) -> Result<Update, StoreError> {
        let text = value.as_str();
        let (update, data) = if text.len() > COMPRESS_ABOVE_BYTES {
            ("SET #v = :nv, #z = :d REMOVE #d", AttributeValue::B(aws_smithy_types::Blob::new(deflate(text)?)))
        } else {
            ("SET #v = :nv, #d = :d REMOVE #z", s(text))
        };
        let stored = match &data {
            AttributeValue::B(b) => b.as_ref().len(),
            _ => text.len(),
        };
        if stored > MAX_VALUE_BYTES {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "{table}/{k} is {} KB ({} KB stored), over DynamoDB's item limit of 400 KB",
                text.len() / 1024,
                stored / 1024
            )));
        }
        let mut values = HashMap::from([(":nv".to_owned(), n(e.outcome())), (":d".to_owned(), data)]);
        let cond = condition(e.expect);
        if let Some((_, Some(v))) = &cond {
            values.insert(":expected".into(), v.clone());
        }
        let names = names_in(&[update, cond.as_ref().map_or("", |c| c.0.as_str())]);
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(table, k)))
            .update_expression(update)
            .set_condition_expression(cond.map(|c| c.0))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|err| StoreError::Unexpected(err.into()))
    }

    fn transact_item(&self, e: &Exact) -> Result<TransactWriteItem, StoreError> {
        let (table, k) = e.op.target();
        let cond = condition(e.expect);
        let values = cond.as_ref().and_then(|c| c.1.clone()).map(|v| HashMap::from([(":expected".to_owned(), v)]));
        let names = cond.as_ref().and_then(|c| names_in(&[&c.0]));
        let b = TransactWriteItem::builder();
        let item = match &e.op {
            WriteOp::Put { value, .. } => b.update(self.update_of(e, table, k, value)?),
            WriteOp::Delete { .. } => b.delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(table, k)))
                    .set_condition_expression(cond.map(|c| c.0))
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(|err| StoreError::Unexpected(err.into()))?,
            ),
            WriteOp::Check { .. } => {
                let check = cond.map_or_else(|| "attribute_not_exists(#t) OR attribute_exists(#t)".to_owned(), |c| c.0);
                b.condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(table, k)))
                        .set_expression_attribute_names(names_in(&[&check]))
                        .condition_expression(check)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(|err| StoreError::Unexpected(err.into()))?,
                )
            }
        };
        Ok(item.build())
    }

    /// The conflict of write `e`, with the version found now.
    async fn conflict(&self, e: &Exact, caller_expect: Expect) -> StoreError {
        let (t, k) = e.op.target();
        let actual = self.version_of(t, k).await.ok().flatten();
        StoreError::Conflict { table: t.into(), key: k.into(), expected: caller_expect, actual }
    }

    /// One attempt: `Ok(Err(()))` when only writes whose condition the store resolved itself met a
    /// concurrent writer (try again). Every write, a single one too, goes through `TransactWriteItems`: the
    /// SDK gives it a request token that makes its own retries idempotent, so a write that committed is
    /// never reported as a conflict because its answer was lost and the retry met its own version.
    async fn attempt(&self, exact: &[Exact], asked: &[Expect]) -> Result<Result<Vec<u64>, ()>, StoreError> {
        let items = exact.iter().map(|e| self.transact_item(e)).collect::<Result<Vec<_>, _>>()?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Ok(exact.iter().map(Exact::outcome).collect())),
            Err(err) => {
                let reasons: Vec<Option<String>> = err
                    .as_service_error()
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                            Some(c.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let failed: Vec<usize> = reasons
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.as_deref() == Some("ConditionalCheckFailed"))
                    .map(|(i, _)| i)
                    .collect();
                // A condition the caller set decides: that is a conflict, whatever else happened.
                if let Some(&i) = failed.iter().find(|&&i| !exact[i].resolved) {
                    return Err(self.conflict(&exact[i], asked[i]).await);
                }
                if !failed.is_empty() || reasons.iter().any(|r| r.as_deref() == Some("TransactionConflict")) {
                    // Only our own reads were stale, or another transaction held an item: nothing was
                    // written; try again.
                    return Ok(Err(()));
                }
                Err(unavailable("TransactWriteItems", err))
            }
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, table: &str, k: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(table, k)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        out.item().map(record).transpose()
    }

    async fn version(&self, table: &str, k: &str) -> Result<Option<u64>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(table, k)))
            .consistent_read(true)
            .projection_expression("#v")
            .expression_attribute_names("#v", "v")
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        out.item()
            .map(|item| {
                item.get("v")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("{table}/{k}: `v` is not a version")))
            })
            .transpose()
    }

    async fn list(&self, table: &str, key_prefix: &str) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#t", "t")
                .expression_attribute_values(":t", s(table))
                .set_exclusive_start_key(start.take());
            q = if key_prefix.is_empty() {
                q.key_condition_expression("#t = :t")
            } else {
                q.key_condition_expression("#t = :t AND begins_with(#k, :p)")
                    .expression_attribute_names("#k", "k")
                    .expression_attribute_values(":p", s(key_prefix))
            };
            let page = q.send().await.map_err(|e| unavailable("Query", e))?;
            for item in page.items() {
                out.push(record(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        // DynamoDB orders by the UTF-8 bytes of the sort key, as `str` does; sort anyway for the contract.
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<Vec<u64>, StoreError> {
        let mut seen = HashSet::new();
        for op in &ops {
            let (t, k) = op.target();
            if !seen.insert((t.to_owned(), k.to_owned())) {
                return Err(StoreError::DuplicateWrite { table: t.into(), key: k.into() });
            }
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        if ops.len() > MAX_TRANSACTION {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "a transaction of {} writes is over DynamoDB's {MAX_TRANSACTION}",
                ops.len()
            )));
        }
        let asked: Vec<Expect> = ops
            .iter()
            .map(|op| match op {
                WriteOp::Put { expect, .. } | WriteOp::Delete { expect, .. } | WriteOp::Check { expect, .. } => *expect,
            })
            .collect();
        for _ in 0..ATTEMPTS {
            let exact = self.exact(&ops).await?;
            if let Ok(versions) = self.attempt(&exact, &asked).await? {
                return Ok(versions);
            }
        }
        Err(StoreError::Unavailable(format!("the transaction met concurrent writers {ATTEMPTS} times; try again")))
    }
}
