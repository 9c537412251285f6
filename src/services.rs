//! The composition root: the one place the domain services are built from a configuration.
//! `serve`, every CLI command, the doctor, support bundles and the tests take a [`Services`]
//! instead of wiring `Db`, `Accounts`, `Sessions` and `Auth` by hand, and reach each service by
//! its own name (`services.sessions`, never through another service).

use crate::accounts::{Accounts, Policy};
use crate::auth::Auth;
use crate::auth::sessions::Sessions;
use crate::config::Loaded;
use crate::error::Result;
use crate::license::License;
use crate::store::Db;

#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub accounts: Accounts,
    /// The configured session store (the database, or a folder of files).
    pub sessions: Sessions,
    pub auth: Auth,
    pub license: License,
}

impl Services {
    /// Over the deployment's database, which must exist (only `init`, `migrate` and `doctor
    /// --fix` create one), brought up to date if it is from an older version.
    pub async fn open(loaded: &Loaded) -> Result<Self> {
        let db = Db::open_existing(loaded).await?;
        db.migrate().await?;
        let services = Self::over(db, loaded);
        services.license.refresh().await?;
        Ok(services)
    }

    /// Over a database already open (and migrated).
    pub fn over(db: Db, loaded: &Loaded) -> Self {
        let config = &loaded.config;
        let accounts = Accounts::new(db.clone(), Policy::from(config));
        let sessions = Sessions::from_config(config, &db);
        let auth = Auth::new(config, accounts.clone(), sessions.clone());
        let license = License::new(loaded, db.clone());
        Self { db, accounts, sessions, auth, license }
    }
}
