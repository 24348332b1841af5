//! Who asks: a bearer token reduced to its BLAKE3 hash at the boundary, so the core never
//! holds a token and the auth cache, Codios and the root check all key on the same value.

use core::fmt;

/// The BLAKE3 hash of a request's bearer token. The shell hashes the token as it reads the
/// header; the core compares it to the root key's hash and keys Codios decisions on it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Credential([u8; 32]);

impl Credential {
    /// The credential a request bearing `token` presents.
    pub fn of_token(token: &str) -> Self {
        Credential(*blake3::hash(token.as_bytes()).as_bytes())
    }

    /// A credential from a hash computed elsewhere.
    pub fn from_hash(hash: [u8; 32]) -> Self {
        Credential(hash)
    }

    /// The hash's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether this is `other`, in time that does not depend on where they differ (the root
    /// check must not tell a caller how much of the root key's hash it has matched).
    pub fn is(&self, other: &Credential) -> bool {
        blake3::Hash::from(self.0) == blake3::Hash::from(other.0)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A short prefix tells credentials apart in a trace and gives away nothing usable.
        write!(f, "{}", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_and_its_hash_name_the_same_credential() {
        let c = Credential::of_token("secret-token");
        assert_eq!(c.as_bytes(), blake3::hash(b"secret-token").as_bytes());
        assert_eq!(
            c,
            Credential::from_hash(*blake3::hash(b"secret-token").as_bytes())
        );
        assert!(c.is(&Credential::of_token("secret-token")));
        assert!(!c.is(&Credential::of_token("secret-tokeN")));
    }

    #[test]
    fn debug_shows_a_prefix_of_the_hash_never_the_token() {
        let shown = format!("{:?}", Credential::of_token("secret-token"));
        assert_eq!(shown.len(), 8);
        assert!(!shown.contains("secret"));
    }
}
