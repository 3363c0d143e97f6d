//! The parameter values and statement batches the store executes. They are plain data (serde), so
//! a batch built on one member can be shipped to and applied by another.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    /// Text rendering used by `lxd sql` tables.
    pub fn render(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(v) => v.to_string(),
            Value::Real(v) => v.to_string(),
            Value::Text(s) => s.clone(),
            Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(v) => (*v).into(),
            Value::Real(v) => serde_json::Number::from_f64(*v).map(Into::into).unwrap_or(serde_json::Value::Null),
            Value::Text(s) => s.clone().into(),
            Value::Blob(b) => String::from_utf8_lossy(b).into_owned().into(),
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// One parameterised statement. Parameters bind positionally to `?`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stmt {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Stmt {
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Self {
        Stmt { sql: sql.into(), params }
    }
}

/// A check inside a batch: `stmt` is a `SELECT COUNT(*) …`; the batch aborts with `message`
/// unless the count satisfies the guard. This keeps check-then-write decisions inside the
/// transaction, identical on every replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Guard {
    pub stmt: Stmt,
    pub expect: GuardExpect,
    pub message: String,
    /// Whether a failure means "not found" (404) rather than "conflict" (409).
    pub not_found: bool,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum GuardExpect {
    Zero,
    NonZero,
}

/// What a read saw of an object's rows (those its ETag covers): the statements that read them
/// and a digest of their rows. A batch guarded by it applies only if the same statements still
/// give rows with the same digest when it is applied, on every replica alike: a write made
/// from a stale read fails instead of overwriting what happened in between.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub stmts: Vec<Stmt>,
    pub digest: String,
}

/// A [`Version`] check inside a batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unchanged {
    pub version: Version,
    pub message: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Step {
    /// Index into `Batch::guards`.
    Guard(usize),
    /// Index into `Batch::stmts`.
    Stmt(usize),
    /// Index into `Batch::unchanged`.
    Unchanged(usize),
}

/// Statements and guards applied in one transaction, in the order of `steps`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Batch {
    pub stmts: Vec<Stmt>,
    pub guards: Vec<Guard>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<Unchanged>,
    pub steps: Vec<Step>,
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }
    pub fn push(&mut self, sql: impl Into<String>, params: Vec<Value>) -> &mut Self {
        self.steps.push(Step::Stmt(self.stmts.len()));
        self.stmts.push(Stmt::new(sql, params));
        self
    }
    /// Abort with a conflict unless the count query returns zero.
    pub fn require_none(&mut self, sql: impl Into<String>, params: Vec<Value>, message: impl Into<String>) -> &mut Self {
        self.guard(sql, params, GuardExpect::Zero, message, false)
    }
    /// Abort with not-found unless the count query returns non-zero.
    pub fn require_some(&mut self, sql: impl Into<String>, params: Vec<Value>, message: impl Into<String>) -> &mut Self {
        self.guard(sql, params, GuardExpect::NonZero, message, true)
    }
    fn guard(
        &mut self,
        sql: impl Into<String>,
        params: Vec<Value>,
        expect: GuardExpect,
        message: impl Into<String>,
        not_found: bool,
    ) -> &mut Self {
        self.steps.push(Step::Guard(self.guards.len()));
        self.guards.push(Guard { stmt: Stmt::new(sql, params), expect, message: message.into(), not_found });
        self
    }
    /// Abort with "precondition failed" unless the rows `version` was read from are unchanged.
    pub fn require_unchanged(&mut self, version: &Version, message: impl Into<String>) -> &mut Self {
        self.steps.push(Step::Unchanged(self.unchanged.len()));
        self.unchanged.push(Unchanged { version: version.clone(), message: message.into() });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}
