//! Authentication: JWT access and refresh tokens, argon2id passwords, and the extractors that
//! tell a handler who is calling.

pub mod extract;
pub mod jwt;
pub mod password;

pub use extract::{Admin, Caller, MaybeCaller};
pub use jwt::{JwtKeys, Role, TokenKind};
pub use password::PasswordHasher;

/// A random token of `bytes` bytes, hex-encoded (token ids, refresh families, secrets).
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}
