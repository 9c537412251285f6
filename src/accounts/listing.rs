//! Paged searches for the admin area's lists: one page of rows and how many match in all, so a
//! list of 100,000 clients costs one page's worth of rows.

use super::{Accounts, Client, User};
use crate::error::Result;
use crate::store::composed;

/// One page of a search, and how many rows match it in all.
#[derive(Debug, serde::Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub total: i64,
}

fn pattern(search: &str) -> String {
    format!("%{}%", search.trim().to_lowercase())
}

/// A table the admin area lists, and what its search matches.
struct Searchable {
    table: &'static str,
    matching: &'static str,
}

const CLIENTS: Searchable = Searchable {
    table: "clients",
    matching: "LOWER(email) LIKE $1 OR LOWER(first_name || ' ' || last_name) LIKE $1 OR LOWER(company) LIKE $1",
};
const USERS: Searchable =
    Searchable { table: "users", matching: "email_norm LIKE $1 OR LOWER(first_name || ' ' || last_name) LIKE $1" };

impl Accounts {
    /// Clients whose name, company or email contains `search`, newest first; `limit` 0 counts only.
    pub async fn clients_page(&self, search: &str, offset: i64, limit: i64) -> Result<Listing<Client>> {
        self.page(&CLIENTS, search, offset, limit).await
    }

    /// Users whose name or email contains `search`, newest first; `limit` 0 counts only.
    pub async fn users_page(&self, search: &str, offset: i64, limit: i64) -> Result<Listing<User>> {
        self.page(&USERS, search, offset, limit).await
    }

    async fn page<T>(&self, of: &Searchable, search: &str, offset: i64, limit: i64) -> Result<Listing<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let Searchable { table, matching } = of;
        let total = sqlx::query_scalar(composed(format!("SELECT COUNT(*) FROM {table} WHERE {matching}")))
            .bind(pattern(search))
            .fetch_one(self.db.pool())
            .await?;
        let items = if limit == 0 {
            Vec::new()
        } else {
            sqlx::query_as(composed(format!(
                "SELECT * FROM {table} WHERE {matching} ORDER BY id DESC LIMIT $2 OFFSET $3"
            )))
            .bind(pattern(search))
            .bind(limit)
            .bind(offset)
            .fetch_all(self.db.pool())
            .await?
        };
        Ok(Listing { items, total })
    }
}
