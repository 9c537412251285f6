//! `sql`: a query against the configured database returns the expected value. It runs in a
//! transaction that is always rolled back, so a probe cannot change data.

use serde::Deserialize;
use sqlx::Row;

use super::unmet;
use crate::doctor::check::Outcome;
use crate::doctor::context::Context;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// A query whose first column of the first row is compared.
    query: String,
    #[serde(default)]
    equals: Option<serde_json::Value>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
}

impl Spec {
    pub async fn run(&self, ctx: &Context) -> Outcome {
        let db = match ctx.db().await {
            Ok(db) => db,
            Err(e) => return Outcome::error(format!("no database: {e:?}")),
        };
        let mut tx = match db.pool().begin().await {
            Ok(tx) => tx,
            Err(e) => return Outcome::error(format!("cannot start a transaction: {e}")),
        };
        let row = sqlx::query(crate::store::composed(self.query.clone())).fetch_optional(&mut *tx).await;
        let _ = tx.rollback().await;
        let row = match row {
            Ok(Some(row)) => row,
            Ok(None) => return unmet("the query returned no rows").with("query", &self.query),
            Err(e) => {
                return Outcome::error(format!("the query failed: {e}")).with("query", &self.query);
            }
        };
        let value: serde_json::Value = if let Ok(i) = row.try_get::<i64, _>(0) {
            i.into()
        } else if let Ok(f) = row.try_get::<f64, _>(0) {
            f.into()
        } else if let Ok(s) = row.try_get::<String, _>(0) {
            s.into()
        } else {
            serde_json::Value::Null
        };
        let number = value.as_f64();
        let base = |o: Outcome| o.with("query", &self.query).with("value", &value);
        if let Some(want) = &self.equals
            && want != &value
            && want.as_f64().zip(number).is_none_or(|(a, b)| a != b)
        {
            return base(unmet(format!("the query returned {value}, expected {want}")));
        }
        if let Some(min) = self.min
            && number.is_none_or(|n| n < min)
        {
            return base(unmet(format!("the query returned {value}, below the minimum {min}")));
        }
        if let Some(max) = self.max
            && number.is_none_or(|n| n > max)
        {
            return base(unmet(format!("the query returned {value}, above the maximum {max}")));
        }
        base(Outcome::pass(format!("the query returned {value}")))
    }
}

impl super::ProbeKind for Spec {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn validate(&self) -> Result<(), String> {
        if self.query.trim().is_empty() {
            return Err("sql query is empty".into());
        }
        if self.equals.is_none() && self.min.is_none() && self.max.is_none() {
            return Err("sql probe needs equals, min or max".into());
        }
        Ok(())
    }

    fn probe<'a>(&'a self, ctx: &'a crate::doctor::context::Context) -> crate::doctor::check::CheckFuture<'a> {
        Box::pin(self.run(ctx))
    }

    fn needs_database(&self) -> bool {
        true
    }
}
