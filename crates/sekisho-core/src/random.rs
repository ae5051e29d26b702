//! Random identifiers. Every secret or id the server hands out carries at least 128 bits from
//! the operating system's CSPRNG.

/// `n` random bytes from the OS.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all; continuing would mint
    // guessable ids, so stopping is the only safe answer.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// 128 random bits as 32 lowercase hex characters (the shape of simplejwt's `jti`).
pub fn hex128() -> String {
    hex(&bytes::<16>())
}

pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// True for exactly 32 lowercase hex characters.
pub fn is_hex128(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_32_hex_and_distinct() {
        let a = super::hex128();
        let b = super::hex128();
        assert!(super::is_hex128(&a) && super::is_hex128(&b));
        assert_ne!(a, b);
        assert!(!super::is_hex128("ABCDEF0123456789abcdef0123456789"));
    }
}
