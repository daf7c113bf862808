//! Random tokens: token ids, refresh families, generated secrets.

/// A random token of `bytes` bytes, hex-encoded (token ids, refresh families, secrets).
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}
