//! Facts as a person reads them on a page or in a mail: which browser on which system a session is,
//! and a time in the reader's own time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// "Chrome 156 on Linux" from a User-Agent header; "Unknown browser" when it says nothing usable.
pub fn device(user_agent: &str) -> String {
    let Some(ua) = woothee::parser::Parser::new().parse(user_agent) else {
        return "Unknown browser".into();
    };
    // Letters and digits only, and few: some patterns take free text as the version (`curl`,
    // or whatever a client writes there), and this is shown in mails.
    let major: String =
        ua.version.split('.').next().unwrap_or("").chars().filter(char::is_ascii_alphanumeric).take(16).collect();
    let major = major.as_str();
    let browser = match (ua.name, major) {
        ("UNKNOWN", _) => "Unknown browser".to_string(),
        (name, "" | "UNKNOWN") => name.to_string(),
        (name, v) => format!("{name} {v}"),
    };
    match ua.os {
        "UNKNOWN" => browser,
        os => format!("{browser} on {os}"),
    }
}

/// The zone a user reads times in: their own choice, else the site's `timezone:`, else UTC.
pub fn zone(user_choice: &str, site: Option<Tz>) -> Tz {
    user_choice.parse().ok().or(site).unwrap_or(Tz::UTC)
}

/// A Unix time as `2026-12-01 11:04 CET` in `tz`.
pub fn local_time(unix: i64, tz: Tz) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_people_recognise() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.114 Safari/537.36";
        assert_eq!(device(chrome), "Chrome 156 on Linux");
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(device(firefox), "Firefox 133 on Windows 10");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        assert!(device(iphone).starts_with("Safari 18 on iPhone"), "{}", device(iphone));
        assert_eq!(device(""), "Unknown browser");
        assert!(device("curl/8.5.0").contains("curl"), "{}", device("curl/8.5.0"));
        // jig browser's pattern takes the rest of the header as its "version".
        let forged = "jig browser web; Visit evil dot example now to keep your account";
        assert_eq!(device(forged), "jig browser Visitevildotexam on jig", "one glued word, never a sentence");
    }

    #[test]
    fn times_in_the_readers_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(local_time(1_764_587_040, berlin), "2025-12-01 12:04 CET");
        assert_eq!(local_time(1_764_587_040, zone("", None)), "2025-12-01 11:04 UTC");
        assert_eq!(zone("nonsense", Some(berlin)), berlin);
        assert_eq!(zone("Asia/Tokyo", Some(berlin)).name(), "Asia/Tokyo");
    }
}
