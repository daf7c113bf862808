//! argon2id password hashing. Hashing is deliberately slow and memory-hungry (19 MiB a hash by
//! default), so the service runs it on a [`PasswordPool`] of its own, never on an async worker.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// argon2id with the configured cost, hashing into a caller's memory (see [`PasswordPool`]).
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
}

/// The bytes of a fresh salt (the recommended 16).
const SALT_LEN: usize = 16;

impl PasswordHasher {
    /// `memory_kib` and `iterations` as OWASP recommends by default (19 MiB, t=2, p=1); tests
    /// may pass cheaper ones.
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, String> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|error| format!("argon2 parameters: {error}"))?;
        Ok(Self { params })
    }

    /// The PHC string (`$argon2id$v=19$m=…`) of `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> String {
        self.hash_with(password, &mut Vec::new())
    }

    /// Whether `password` matches the stored PHC string (with the parameters in that string).
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        self.verify_with(password, phc, &mut Vec::new())
    }

    /// [`hash`](Self::hash) in `memory`, which is grown to the cost's size once and kept.
    pub fn hash_with(&self, password: &str, memory: &mut Vec<Block>) -> String {
        let salt: [u8; SALT_LEN] = rand::random();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        memory.resize(self.params.block_count(), Block::default());
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut memory[..])
            .expect(
                "argon2id with valid parameters, a 16-byte salt and a 32-byte output cannot fail",
            );
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).expect("the parameters render"),
            salt: Some(Salt::new(&salt).expect("16 bytes is a valid salt")),
            hash: Some(Output::new(&out).expect("32 bytes is a valid output")),
        };
        phc.to_string()
    }

    /// [`verify`](Self::verify) in `memory`. The comparison is constant-time (`Output`'s).
    pub fn verify_with(&self, password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
        let Ok(stored) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
            return false;
        };
        let (Ok(params), Ok(algorithm)) = (
            Params::try_from(&stored),
            Algorithm::try_from(stored.algorithm.as_str()),
        ) else {
            return false;
        };
        let version = match stored.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(version)) => version,
            Some(Err(_)) => return false,
        };
        let mut out = vec![0u8; expected.len()];
        memory.resize(params.block_count(), Block::default());
        let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut memory[..],
        );
        computed.is_ok() && Output::new(&out).is_ok_and(|out| &out == expected)
    }
}

/// A few threads that do nothing but hash and verify passwords, fed by a bounded queue.
///
/// Why not the blocking pool (`web::block`): it runs as many hashes at once as requests ask
/// for, on up to hundreds of threads, and each thread's allocator keeps the 19 MiB it once
/// used. Measured: 64 registrations, 16 at a time, took the engine from 12 MB to 1.07 GB
/// resident, for good (and a load test's set-up to 2.6 GB). Two threads allocating 19 MiB a
/// hash still reached 388 MB (glibc hands a busy thread another arena, and each keeps what it
/// held), so each thread here hashes into one buffer of its own, allocated once. At most
/// `threads` hashes run at once — as many as there are cores, which is all the CPU there is
/// anyway — so memory stays at `threads` × 19 MiB, and a flood of sign-ins waits in a queue of
/// known length or is refused (`PoolFull`) instead of taking the machine.
pub struct PasswordPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

enum Job {
    Hash(String, tokio::sync::oneshot::Sender<String>),
    Verify(String, String, tokio::sync::oneshot::Sender<bool>),
}

/// The pool's queue is full (or the pool has stopped).
#[derive(Debug)]
pub struct PoolFull;

impl PasswordPool {
    /// `threads` workers and a queue of `queue` jobs waiting at most.
    pub fn start(hasher: PasswordHasher, threads: usize, queue: usize) -> Self {
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(queue);
        let inbox = std::sync::Arc::new(std::sync::Mutex::new(inbox));
        for index in 0..threads.max(1) {
            let (inbox, hasher) = (inbox.clone(), hasher.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("topkart-argon2-{index}"))
                .spawn(move || {
                    // argon2's memory, allocated once for the thread and reused by every hash:
                    // an allocation of 19 MiB per hash fragments the allocator's arenas.
                    let mut memory: Vec<argon2::Block> = Vec::new();
                    loop {
                        // The lock is held only to take a job, not while hashing.
                        let job = match inbox.lock() {
                            Ok(inbox) => inbox.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(Job::Hash(password, reply)) => {
                                let _ = reply.send(hasher.hash_with(&password, &mut memory));
                            }
                            Ok(Job::Verify(password, phc, reply)) => {
                                let _ =
                                    reply.send(hasher.verify_with(&password, &phc, &mut memory));
                            }
                            // Every sender is gone: the service stopped.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password hashing thread");
            }
        }
        Self { jobs }
    }

    pub async fn hash(&self, password: String) -> Result<String, PoolFull> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Job::Hash(password, reply))
            .map_err(|_| PoolFull)?;
        answer.await.map_err(|_| PoolFull)
    }

    pub async fn verify(&self, password: String, phc: String) -> Result<bool, PoolFull> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Job::Verify(password, phc, reply))
            .map_err(|_| PoolFull)?;
        answer.await.map_err(|_| PoolFull)
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

    /// Hashes stored before the pool (made by argon2's own `hash_password`) still verify, and
    /// ours verify with argon2's own verifier: the same PHC strings either way.
    #[test]
    fn hashes_agree_with_argon2s_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = PasswordHasher::new(64, 1).expect("valid parameters");
        let theirs = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(64, 1, 1, None).expect("valid parameters"),
        );
        let stored = theirs
            .hash_password(b"correct horse")
            .expect("hashed")
            .to_string();
        assert!(ours.verify("correct horse", &stored));
        assert!(!ours.verify("correct horsE", &stored));
        let mine = ours.hash("correct horse");
        assert!(
            theirs
                .verify_password(b"correct horse", mine.as_str())
                .is_ok()
        );
        assert!(!ours.verify("correct horse", "not a phc string"));
    }
}
