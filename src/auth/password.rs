//! argon2id password hashing. Hashing is deliberately slow, so callers run it on the blocking
//! thread pool (`web::block`), never on an async worker.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
}

impl PasswordHasher {
    /// `memory_kib` and `iterations` as OWASP recommends by default (19 MiB, t=2, p=1); tests
    /// may pass cheaper ones.
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, String> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|error| format!("argon2 parameters: {error}"))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string (`$argon2id$v=19$m=…`) of `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> String {
        self.argon2()
            .hash_password(password.as_bytes())
            .expect("argon2id hashing with valid parameters and an OS salt cannot fail")
            .to_string()
    }

    /// Whether `password` matches the stored PHC string (with the parameters in that string).
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        self.argon2()
            .verify_password(password.as_bytes(), phc)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::PasswordHasher;

    /// The defaults are argon2id with OWASP's minimum (19 MiB, t=2, p=1), written into the PHC
    /// string, and verification accepts only the right password.
    #[test]
    fn defaults_are_argon2id_at_owasp_minimum() {
        let settings = crate::config::Settings::defaults();
        assert_eq!(
            (
                settings.passwords.argon2_memory_kib,
                settings.passwords.argon2_iterations
            ),
            (19_456, 2)
        );
        let hasher = PasswordHasher::new(
            settings.passwords.argon2_memory_kib,
            settings.passwords.argon2_iterations,
        )
        .expect("valid parameters");
        let phc = hasher.hash("correct horse battery");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse battery", &phc));
        assert!(!hasher.verify("correct horse battery!", &phc));
    }
}
