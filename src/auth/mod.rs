//! Authentication: JWT access and refresh tokens, argon2id passwords, and the extractors that
//! tell a handler who is calling.

pub mod extract;
pub mod jwt;
pub mod password;
mod random;

pub use extract::{Admin, Caller, MaybeCaller};
pub use jwt::{JwtKeys, Role, TokenKind};
pub use password::{PasswordHasher, PasswordPool};
pub use random::random_hex;
