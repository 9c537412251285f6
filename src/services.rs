//! The composition root: the one place the domain services are built from a configuration.
//! `serve`, every CLI command, the doctor, support bundles and the tests take a [`Services`]
//! instead of wiring `Db`, `Accounts` and `Auth` by hand.

use crate::accounts::{Accounts, Policy};
use crate::auth::Auth;
use crate::config::{Config, Loaded};
use crate::error::Result;
use crate::store::Db;

#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub accounts: Accounts,
    pub auth: Auth,
}

impl Services {
    /// Over the deployment's database, which must exist (only `init`, `migrate` and `doctor
    /// --fix` create one), brought up to date if it is from an older version.
    pub async fn open(loaded: &Loaded) -> Result<Self> {
        let db = Db::open_existing(loaded).await?;
        db.migrate().await?;
        Ok(Self::over(db, &loaded.config))
    }

    /// Over a database already open (and migrated).
    pub fn over(db: Db, config: &Config) -> Self {
        let accounts = Accounts::new(db.clone(), Policy::from(config));
        let auth = Auth::new(config, accounts.clone());
        Self { db, accounts, auth }
    }
}
