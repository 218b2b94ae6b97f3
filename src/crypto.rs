//! Random secrets (tokens, codes, client secrets, browser handles) and their
//! hashes. Secrets are 256-bit random values; only their SHA-256 hashes are
//! stored. The newtype's `Debug` never prints the value.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A freshly minted secret. Not `Clone`: it is handed out once.
pub struct Secret(String);

impl Secret {
    /// 32 random bytes, base64url, behind a readable prefix (`gh_at_`, `gh_rt_`…).
    pub fn generate(prefix: &str) -> Secret {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Secret(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// [`Secret::generate`] with the row id it is stored under between the
    /// prefix and the random part (`gh_rt_42.<base64url>`): the store finds
    /// it by the id and checks its hash, so it needs no index by hash.
    pub fn numbered(prefix: &str, id: i64) -> Secret {
        Secret::generate(&format!("{prefix}{id}."))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_exposed(self) -> String {
        self.0
    }

    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// SHA-256 of a presented secret, hex. Used as the lookup key.
pub fn hash(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

/// Bytes as lowercase hex digits. (Formatting each byte took a third of a
/// bearer check's hashing.)
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// A short random identifier for display (consent requests, grants): 12 hex digits.
pub fn short_id(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex(&bytes))
}

/// PKCE S256: BASE64URL(SHA256(verifier)) == challenge (RFC 7636 §4.6).
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

/// RFC 7636 §4.1: 43–128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
pub fn is_valid_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A phrase the user matches between the browser page and the consent prompt.
pub fn match_phrase() -> String {
    const ADJ: &[&str] = &[
        "amber", "brisk", "calm", "deep", "eager", "fuzzy", "gentle", "hollow", "ivory", "jolly",
        "keen", "lucky", "mellow", "noble", "olive", "proud", "quiet", "rapid", "silver", "tidy",
        "urban", "vivid", "witty", "young", "zesty", "coral", "dusty", "frosty",
    ];
    const NOUN: &[&str] = &[
        "falcon", "otter", "maple", "harbor", "comet", "willow", "badger", "lantern", "meadow",
        "pebble", "raven", "summit", "tiger", "violet", "walrus", "yarrow", "zephyr", "canyon",
        "dolphin", "ember", "fjord", "glacier", "heron", "island",
    ];
    let mut rng = rand::rng();
    let a = ADJ[(rng.next_u32() as usize) % ADJ.len()];
    let n = NOUN[(rng.next_u32() as usize) % NOUN.len()];
    let d = 10 + rng.next_u32() % 90;
    format!("{a}-{n}-{d}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_redacted() {
        let a = Secret::generate("gh_at_");
        let b = Secret::generate("gh_at_");
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), "gh_at_".len() + 43);
        assert_eq!(format!("{a:?}"), "Secret([redacted])");
        assert_eq!(a.hash().len(), 64);
    }

    #[test]
    fn hashes_are_lowercase_hex_sha256() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash("abc"), abc, "FIPS 180-2's test vector");
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff, 0x5a]), "000ff0ff5a");
        let id = short_id("gr_");
        assert!(id.len() == 15 && id[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert!(pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(is_valid_pkce_value(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!is_valid_pkce_value("short"));
    }
}
