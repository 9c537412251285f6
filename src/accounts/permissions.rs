//! The 13 per-client permission keys a user can hold on a client account.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Code, Error};

macro_rules! permissions {
    ($($variant:ident => $key:literal, $what:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum Permission { $($variant),* }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),*];
            pub fn key(self) -> &'static str {
                match self { $(Permission::$variant => $key),* }
            }
            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $what),* }
            }
            /// The description as a label a person reads beside a checkbox (written out once:
            /// the client area lists them on every view).
            pub fn label(self) -> &'static str {
                static LABELS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
                    Permission::ALL.iter().map(|p| {
                        let what = p.description();
                        what[..1].to_ascii_uppercase() + &what[1..]
                    }).collect()
                });
                &LABELS[self as usize]
            }
        }

        impl FromStr for Permission {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($key => Ok(Permission::$variant),)*
                    other => Err(Error::refused(
                        Code::InvalidPermission,
                        format!("unknown permission `{other}`; expected one of: {}", [$($key),*].join(", ")),
                    )),
                }
            }
        }
    };
}

permissions! {
    Profile => "profile", "edit the account profile";
    Contacts => "contacts", "view and manage contacts";
    Products => "products", "view products and services";
    ManageProducts => "manageproducts", "view and change product passwords";
    ProductSso => "productsso", "single sign-on into products";
    Domains => "domains", "view domains";
    ManageDomains => "managedomains", "manage domain settings";
    Invoices => "invoices", "view and pay invoices";
    Quotes => "quotes", "view and accept quotes";
    Tickets => "tickets", "view and open tickets";
    Affiliates => "affiliates", "affiliate account";
    Emails => "emails", "view emails sent";
    Orders => "orders", "place orders, upgrades and cancellations";
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A set of permissions, stored as a comma-separated list of keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Permissions(BTreeSet<Permission>);

impl Permissions {
    pub fn all() -> Self {
        Self(Permission::ALL.iter().copied().collect())
    }
    pub fn none() -> Self {
        Self::default()
    }
    pub fn contains(&self, p: Permission) -> bool {
        self.0.contains(&p)
    }
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }
    /// Parses a user-supplied list such as `invoices,tickets`; unknown keys are refused.
    pub fn parse_list(list: &str) -> Result<Self, Error> {
        super::split_csv(list).map(str::parse).collect::<Result<_, _>>().map(Self)
    }
    /// Reads a stored column. Unknown keys (from a newer version, or hand edits) are dropped
    /// here and reported by the doctor's accounts.integrity check.
    pub fn from_stored(stored: &str) -> Self {
        Self(super::split_csv(stored).filter_map(|k| k.parse().ok()).collect())
    }
    pub fn to_stored(&self) -> String {
        super::join_csv(self.0.iter().map(|p| p.key()))
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<T: IntoIterator<Item = Permission>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_keys_round_trip() {
        assert_eq!(Permission::ALL.len(), 13);
        let all = Permissions::all();
        assert_eq!(Permissions::from_stored(&all.to_stored()), all);
        for p in Permission::ALL {
            assert_eq!(p.key().parse::<Permission>().unwrap(), *p);
        }
    }

    #[test]
    fn each_permission_has_its_own_description_as_its_label() {
        assert_eq!(Permission::Invoices.label(), "View and pay invoices");
        for p in Permission::ALL {
            let label = p.label();
            assert_eq!(label.to_lowercase(), p.description(), "{p:?}");
            assert!(label.starts_with(|c: char| c.is_ascii_uppercase()), "{label}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_the_list() {
        let err = Permissions::parse_list("invoices,flyplanes").unwrap_err();
        assert_eq!(err.code(), Code::InvalidPermission);
        assert!(err.to_string().contains("flyplanes"));
        assert_eq!(Permissions::parse_list(" Invoices , tickets ").unwrap().iter().count(), 2);
    }
}
